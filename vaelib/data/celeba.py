"""Real CelebA: find it on disk, parse the official annotations, crop to 64x64 and cache the pixels as uint8.

Accepted layouts (root from the `root` argument or the `CELEBA_ROOT` environment variable):
torchvision `<root>/celeba/{img_align_celeba/, list_attr_celeba.txt, list_eval_partition.txt,
identity_CelebA.txt}` (root may also be the `celeba/` folder itself, or any folder holding those files:
"flat"), and Kaggle `jessicali9530/celeba-dataset` (`img_align_celeba/img_align_celeba/`, `*.csv`, no
identities). The attribute file defines the image list; the decoded crops are cached once per
(source files, crop, size) as an `.npy` that later loads memory-map instantly.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ..errors import ConfigError, DataError
from .attributes import CELEBA_ATTRIBUTES, CROP_BOX

ALIGNED_SIZE = (178, 218)  # every aligned CelebA image; anything else is the unaligned "in the wild" set
SPLITS = {"train": 0, "val": 1, "test": 2}
CACHE_VERSION = 1  # bump when the decoding changes, so old caches are never trusted
_CHUNK = 512  # images per thread-pool batch: bounds memory and paces the progress bar

_HOW_TO_GET = (
    "CelebA needs one of two layouts: torchvision '<root>/celeba/{img_align_celeba/, list_attr_celeba.txt, "
    "list_eval_partition.txt, identity_CelebA.txt}' or Kaggle jessicali9530/celeba-dataset "
    "'<root>/{img_align_celeba/img_align_celeba/, list_attr_celeba.csv, list_eval_partition.csv}'.\n"
    "Automatic Google-Drive downloads often fail (quota): download it by hand from "
    "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Align&Cropped Images, Anno, Eval) or "
    "https://www.kaggle.com/datasets/jessicali9530/celeba-dataset, unzip it, and set CELEBA_ROOT=<root> "
    "(or pass --celeba-root to `python -m vaelib run/train`, CELEBA_ROOT in a notebook)."
)


@dataclass(frozen=True)
class CelebALayout:
    """Where the pieces of one CelebA copy are; `identity_file` is None when the copy has none."""

    kind: str  # "torchvision" | "kaggle" | "flat"
    root: Path
    image_dir: Path
    attr_file: Path
    partition_file: Path
    identity_file: Path | None


@dataclass(eq=False)  # eq would compare arrays elementwise
class Annotations:
    """The parsed annotation files, one row per image listed in the attribute file."""

    filenames: tuple[str, ...]
    attributes: np.ndarray  # int8 (N, 40) in {0, 1}
    attr_names: tuple[str, ...]
    partition: np.ndarray  # int8 (N,) 0 train / 1 val / 2 test
    identity: np.ndarray | None  # int64 (N,)


@dataclass(eq=False)  # eq would compare arrays elementwise
class CelebA64:
    """Cropped CelebA images (uint8, N x 3 x S x S, possibly a read-only memmap) with their labels."""

    images: np.ndarray
    attributes: np.ndarray
    attr_names: tuple[str, ...]
    partition: np.ndarray
    identity: np.ndarray | None
    filenames: tuple[str, ...]
    root: Path
    layout: str

    def __len__(self) -> int:
        return len(self.filenames)

    def split(self, name: str) -> np.ndarray:
        """int64 indices of the official "train" / "val" / "test" partition, or "all"."""
        if name == "all":
            return np.arange(len(self), dtype=np.int64)
        if name not in SPLITS:
            raise ConfigError(f"unknown split {name!r}; use one of {[*SPLITS, 'all']}.")
        return np.flatnonzero(self.partition == SPLITS[name]).astype(np.int64)

    def attr_index(self, name: str) -> int:
        """Column of attribute `name` in `attributes` (exact official spelling, e.g. "Smiling")."""
        if name in self.attr_names:
            return self.attr_names.index(name)
        close = difflib.get_close_matches(name, self.attr_names, n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(map(repr, close))}?" if close else "see CELEBA_ATTRIBUTES."
        raise ConfigError(f"unknown CelebA attribute {name!r}; {hint}")

    def require_identity(self) -> np.ndarray:
        """Identity labels, or a DataError explaining that this copy of CelebA has none."""
        if self.identity is None:
            raise DataError(
                f"this layout ({self.layout}, {self.root}) has no identity_CelebA.txt, so identity features "
                "are unavailable: download identity_CelebA.txt (Anno/ on the official CelebA page) into it."
            )
        return self.identity


def _image_dir(base: Path) -> Path:
    # Unzipping img_align_celeba.zip by hand (and the Kaggle archive) nests the folder in itself.
    nested = base / "img_align_celeba" / "img_align_celeba"
    return nested if nested.is_dir() else base / "img_align_celeba"


def _layout_at(folder: Path, txt_kind: str) -> CelebALayout | None:
    found = [(kind, ext) for kind, ext in ((txt_kind, "txt"), ("kaggle", "csv"))
             if (folder / f"list_attr_celeba.{ext}").is_file()]
    if not found:
        return None
    kind, ext = found[0]
    attr_file, partition_file = folder / f"list_attr_celeba.{ext}", folder / f"list_eval_partition.{ext}"
    image_dir = _image_dir(folder)
    for needed in (partition_file, image_dir):
        if not needed.exists():
            raise DataError(f"{folder} has {attr_file.name} but no {needed.name}; add it.\n{_HOW_TO_GET}")
    identity_file = folder / "identity_CelebA.txt"  # Kaggle copies lack it; users may add it by hand
    return CelebALayout(kind, folder, image_dir, attr_file, partition_file,
                        identity_file if identity_file.is_file() else None)


def resolve_celeba_root(root: str | os.PathLike | None = None) -> CelebALayout:
    """Find the CelebA layout at `root` (or $CELEBA_ROOT); DataError with download instructions if none."""
    root = root if root is not None else os.environ.get("CELEBA_ROOT")
    if not root:
        raise DataError(f"no CelebA folder given: pass --celeba-root or set CELEBA_ROOT.\n{_HOW_TO_GET}")
    base = Path(root).expanduser().resolve()
    if not base.is_dir():
        raise DataError(f"CelebA root {base} does not exist (--celeba-root or CELEBA_ROOT).\n{_HOW_TO_GET}")
    layout = _layout_at(base / "celeba", "torchvision") or _layout_at(
        base, "torchvision" if base.name == "celeba" else "flat"
    )
    if layout is None:
        raise DataError(f"no CelebA annotation files in {base} (--celeba-root or CELEBA_ROOT).\n{_HOW_TO_GET}")
    return layout


def _read_lines(path: Path) -> list[str]:
    try:
        # utf-8-sig drops the byte-order mark that Windows editors add, which would otherwise glue itself to the
        # first name or count; splitlines handles the official CRLF.
        return path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not a text file ({exc}); re-download it.") from exc


def _bad_row(path: Path, lineno: int, line: str, expected: str, bad_value: str | None = None) -> DataError:
    # The whole row, not a prefix: the bad value is often the 40th field, far past any cut.
    value = f" (bad value {bad_value!r})" if bad_value is not None else ""
    return DataError(f"{path.name} line {lineno}: expected {expected}, got {line.strip()!r}{value}; "
                     f"the file is damaged: re-download it ({path}).")


def _split_rows(path: Path, lines: list[str], first: int, sep: str | None, width: int,
                expected: str) -> tuple[list[str], list[str]]:
    """Names and the flattened value fields of the non-blank rows from line index `first` (hot loop)."""
    names, values = [], []
    for lineno, line in enumerate(lines[first:], first + 1):
        parts = line.split(sep)
        if len(parts) != width + 1:
            if not line.strip():
                continue
            raise _bad_row(path, lineno, line, expected)
        names.append(parts[0])
        values += parts[1:]
    return names, values


def _decode_values(path: Path, lines: list[str], first: int, values: list[str], width: int,
                   codes: dict[str, int], expected: str, dtype: type = np.int64) -> np.ndarray:
    """Map value strings through `codes` fast; only on a bad value, find its line for the message."""
    try:
        return np.fromiter(map(codes.__getitem__, values), dtype, len(values)).reshape(-1, width)
    except KeyError:
        bad = next(i for i, v in enumerate(values) if v not in codes)
        row_lines = [n for n, line in enumerate(lines[first:], first) if line.strip()]
        line = row_lines[bad // width]
        raise _bad_row(path, line + 1, lines[line], expected, values[bad]) from None


def _parse_attributes(path: Path) -> tuple[list[str], np.ndarray]:
    lines = _read_lines(path)
    csv = path.suffix == ".csv"
    # txt: count line, header of 40 names, rows; Kaggle csv: "image_id,<40 names>" header, rows.
    header = lines[0].split(",")[1:] if csv and lines else (lines[1].split() if len(lines) > 1 else [])
    if not csv and lines and tuple(lines[0].split()) == CELEBA_ATTRIBUTES:
        raise DataError(f"{path.name} line 1 is the header of attribute names, but the official file starts with "
                        f"a line holding the image count: the count line is missing; re-download it ({path}).")
    if tuple(header) != CELEBA_ATTRIBUTES:
        raise _bad_row(path, 1 if csv else 2, ",".join(header), "the 40 official attribute names")
    expected = "an image name and 40 values of -1/1"
    first = 1 if csv else 2
    names, values = _split_rows(path, lines, first, "," if csv else None, 40, expected)
    attrs = _decode_values(path, lines, first, values, 40, {"1": 1, "-1": 0}, expected, np.int8)
    if not csv:
        count = lines[0].strip()
        if not count.isdigit() or int(count) != len(names):
            raise DataError(f"{path.name} line 1 says {count!r} images but the file has {len(names)} rows; "
                            f"it is truncated or edited: re-download it ({path}).")
    if len(set(names)) != len(names):
        raise DataError(f"{path.name} lists some images twice; re-download it ({path}).")
    return names, attrs


def _parse_mapping(path: Path, codes: dict[str, int] | None, expected: str) -> dict[str, int]:
    lines = _read_lines(path)
    first = 1 if path.suffix == ".csv" else 0  # Kaggle CSVs start with an "image_id,..." header
    names, values = _split_rows(path, lines, first, "," if first else None, 1, expected)
    if codes is None:  # identities: any non-negative integer
        codes = {v: int(v) for v in set(values) if v.isascii() and v.isdigit()}
    decoded = _decode_values(path, lines, first, values, 1, codes, expected)[:, 0]
    return dict(zip(names, decoded.tolist(), strict=True))


def _lookup(mapping: dict[str, int], names: list[str], path: Path, attr_file: Path) -> list[int]:
    found = [mapping.get(n) for n in names]
    if None in found:
        missing = [n for n, v in zip(names, found, strict=True) if v is None]
        raise DataError(f"{path.name} has no row for {missing[0]} ({len(missing):,} images of "
                        f"{attr_file.name} missing); the files come from different copies: re-download it.")
    return found


def read_annotations(layout: CelebALayout) -> Annotations:
    """Parse attributes, partition and (if present) identities; the attribute file defines the image list."""
    names, attrs = _parse_attributes(layout.attr_file)
    partition = _parse_mapping(layout.partition_file, {"0": 0, "1": 1, "2": 2}, "an image name and 0, 1 or 2")
    identity = None
    if layout.identity_file is not None:
        ids = _parse_mapping(layout.identity_file, None, "an image name and an integer identity")
        identity = np.array(_lookup(ids, names, layout.identity_file, layout.attr_file), dtype=np.int64)
    return Annotations(tuple(names), attrs, CELEBA_ATTRIBUTES,
                       np.array(_lookup(partition, names, layout.partition_file, layout.attr_file), np.int8),
                       identity)


def _decode_crop(path: Path, crop_box: tuple[int, int, int, int], size: int) -> np.ndarray:
    """One JPEG -> uint8 (3, size, size): crop the face box, then an antialiased bicubic resize."""
    try:
        with Image.open(path) as im:
            im.load()
            if im.size != ALIGNED_SIZE:
                raise DataError(f"{path} is {im.size[0]}x{im.size[1]}, not 178x218: aligned CelebA images "
                                "('img_align_celeba') are all 178x218; use that set, not 'in the wild'.")
            face = im.convert("RGB").crop(crop_box).resize((size, size), Image.Resampling.BICUBIC)
    except OSError as exc:  # PIL's UnidentifiedImageError and "image file is truncated" are OSErrors
        raise DataError(f"{path} is not a readable JPEG ({exc}); delete it and re-download it.") from exc
    return np.asarray(face).transpose(2, 0, 1)


def _cache_key(image_dir: Path, files: list[os.DirEntry], crop_box: tuple[int, ...], size: int) -> str:
    digest = hashlib.sha256(json.dumps([CACHE_VERSION, str(image_dir), list(crop_box), size]).encode())
    for entry in files:  # stat is cheap; a replaced or touched image changes the key
        st = entry.stat()
        digest.update(f"{entry.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _build_cache(files: list[os.DirEntry], crop_box: tuple[int, int, int, int], size: int, target: Path,
                 meta: dict, progress: bool) -> None:
    """Decode into a temp memmap, then rename: a killed build never leaves a cache that is later trusted."""
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(files), 3, size, size))
        # PIL releases the GIL while decoding and resizing, so threads use the cores without pickling;
        # the affinity mask (where the OS has one) is what a batch scheduler actually granted.
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        with ThreadPoolExecutor(max_workers=min(cores, 8)) as pool, \
                tqdm(total=len(files), desc="caching CelebA crops", unit="img", disable=not progress) as bar:
            for start in range(0, len(files), _CHUNK):
                chunk = [Path(e.path) for e in files[start:start + _CHUNK]]
                decoded = pool.map(lambda path: _decode_crop(path, crop_box, size), chunk)
                out[start:start + len(chunk)] = list(decoded)
                bar.update(len(chunk))
        out.flush()
        del out
        os.replace(tmp, target)
        tmp.with_suffix(".json").write_text(json.dumps(meta, indent=1))
        os.replace(tmp.with_suffix(".json"), target.with_suffix(".json"))
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_suffix(".json").unlink(missing_ok=True)


def _check_params(image_size: int, crop_box: tuple[int, ...], limit: int | None) -> None:
    left, top, right, bottom = crop_box if len(crop_box) == 4 else (0, 0, 0, 0)
    if not (0 <= left < right <= ALIGNED_SIZE[0] and 0 <= top < bottom <= ALIGNED_SIZE[1]):
        raise ConfigError(f"crop_box {crop_box} must be (left, top, right, bottom) inside 178x218.")
    if int(image_size) != image_size or image_size < 1:
        raise ConfigError(f"image_size must be a positive integer, not {image_size!r}.")
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be None or a positive number of images, not {limit!r}.")


def load_celeba64(root: str | os.PathLike | None = None, *, image_size: int = 64,
                  crop_box: tuple[int, int, int, int] = CROP_BOX, cache_dir: str | os.PathLike | None = None,
                  progress: bool = True, limit: int | None = None) -> CelebA64:
    """Load real CelebA cropped to `image_size`, decoding the JPEGs only on the first call.

    Images missing from the folder are skipped with a warning; `limit` keeps the first `limit` that exist.
    """
    crop_box = tuple(int(v) for v in crop_box)
    _check_params(image_size, crop_box, limit)
    layout = resolve_celeba_root(root)
    ann = read_annotations(layout)
    present = {e.name: e for e in os.scandir(layout.image_dir) if e.is_file()}
    keep = [i for i, name in enumerate(ann.filenames) if name in present]
    if not keep:
        raise DataError(f"none of the {len(ann.filenames):,} images listed in {layout.attr_file.name} is in "
                        f"{layout.image_dir}; unzip img_align_celeba there.")
    if len(keep) < len(ann.filenames):
        warnings.warn(f"found {len(keep):,} of {len(ann.filenames):,} images listed in "
                      f"{layout.attr_file.name}; using those", stacklevel=2)
    keep = keep[:limit] if limit is not None else keep
    files = [present[ann.filenames[i]] for i in keep]

    # The dataset folder may be read-only (a shared copy), so the cache lives elsewhere.
    cache = Path(cache_dir or os.environ.get("VAELIB_CACHE") or "~/.cache/vaelib").expanduser()
    key = _cache_key(layout.image_dir, files, crop_box, image_size)
    target = cache / f"celeba_{image_size}px_{key[:20]}.npy"
    meta = {"key": key, "version": CACHE_VERSION, "image_dir": str(layout.image_dir), "count": len(files),
            "crop_box": list(crop_box), "image_size": image_size}
    if not _cache_valid(target, meta):
        try:
            cache.mkdir(parents=True, exist_ok=True)
            _build_cache(files, crop_box, image_size, target, meta, progress)
        except OSError as exc:  # read-only folder, full disk: PIL's errors are DataErrors by now
            raise DataError(f"cannot write the image cache in {cache} ({exc}); pass cache_dir=... or set "
                            "VAELIB_CACHE to a writable folder.") from exc
    idx = np.array(keep, dtype=np.int64)
    return CelebA64(np.load(target, mmap_mode="r"), ann.attributes[idx], ann.attr_names, ann.partition[idx],
                    None if ann.identity is None else ann.identity[idx],
                    tuple(ann.filenames[i] for i in keep), layout.root, layout.kind)


def _cache_valid(target: Path, meta: dict) -> bool:
    """Trust a cache only if its metadata (written last) matches and the array has the expected shape."""
    try:
        if json.loads(target.with_suffix(".json").read_text()) != meta:
            return False
        images = np.load(target, mmap_mode="r")
    except (OSError, ValueError):
        return False
    size = meta["image_size"]
    return images.dtype == np.uint8 and images.shape == (meta["count"], 3, size, size)
