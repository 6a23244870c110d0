"""CelebA as 64x64 uint8 crops: decode the JPEGs of a copy found by `celeba_files`, cache the pixels, and load.

The decoded crops are cached once per (source files, crop, size) as an `.npy` that later loads memory-map
instantly, in the caller's cache folder (a run passes `$VAELIB_DATA/cache`). A synthetic set's marker says which
labels its images render (`CelebA64.rendered_attributes`).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ..atomic import atomic_write, atomic_write_text
from ..errors import ConfigError, DataError, WriteFailedError
from .attributes import CROP_BOX
from .celeba_files import read_annotations, resolve_celeba_root
from .provenance import rendered_attributes

ALIGNED_SIZE = (178, 218)  # every aligned CelebA image; anything else is the unaligned "in the wild" set
SPLITS = {"train": 0, "val": 1, "test": 2}
CACHE_VERSION = 1  # bump when the decoding changes, so old caches are never trusted
_CHUNK = 512  # images per thread-pool batch: bounds memory and paces the progress bar


@dataclass(eq=False)  # eq would compare arrays elementwise
class CelebA64:
    """Cropped CelebA images (uint8, N x 3 x S x S, possibly a read-only memmap) with their labels.

    `rendered_attributes`: the labels the pixels actually show, for a synthetic set (its generator draws only
    some of the 40); None for real photos, where every label describes the image.
    """

    images: np.ndarray
    attributes: np.ndarray
    attr_names: tuple[str, ...]
    partition: np.ndarray
    identity: np.ndarray | None
    filenames: tuple[str, ...]
    root: Path
    layout: str
    rendered_attributes: frozenset[str] | None = None

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
    """Write the crops, then their metadata, each atomically (`vaelib.atomic`): `_cache_valid` trusts only an
    array whose metadata was written after it, so a killed build never leaves a cache that is later trusted."""
    atomic_write(target, _crop_writer(files, crop_box, size, progress))
    atomic_write_text(target.with_suffix(".json"), json.dumps(meta, indent=1))


def _crop_writer(files: list[os.DirEntry], crop_box: tuple[int, int, int, int], size: int, progress: bool
                 ) -> Callable:
    """Write an .npy of the decoded crops chunk by chunk, so memory holds one chunk, not the whole set."""

    def write(f) -> None:
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
                  "shape": (len(files), 3, size, size)}
        np.lib.format.write_array_header_1_0(f, header)
        # PIL releases the GIL while decoding and resizing, so threads use the cores without pickling;
        # the affinity mask (where the OS has one) is what a batch scheduler actually granted.
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        with ThreadPoolExecutor(max_workers=min(cores, 8)) as pool, \
                tqdm(total=len(files), desc="caching CelebA crops", unit="img", disable=not progress) as bar:
            for start in range(0, len(files), _CHUNK):
                chunk = [Path(e.path) for e in files[start:start + _CHUNK]]
                f.write(np.stack(list(pool.map(lambda path: _decode_crop(path, crop_box, size), chunk))).tobytes())
                bar.update(len(chunk))

    return write


def _check_params(image_size: int, crop_box: tuple[int, ...], limit: int | None) -> None:
    left, top, right, bottom = crop_box if len(crop_box) == 4 else (0, 0, 0, 0)
    if not (0 <= left < right <= ALIGNED_SIZE[0] and 0 <= top < bottom <= ALIGNED_SIZE[1]):
        raise ConfigError(f"crop_box {crop_box} must be (left, top, right, bottom) inside 178x218.")
    if int(image_size) != image_size or image_size < 1:
        raise ConfigError(f"image_size must be a positive integer, not {image_size!r}.")
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be None or a positive number of images, not {limit!r}.")


def load_celeba64(root: str | os.PathLike | None = None, *, cache_dir: str | os.PathLike, image_size: int = 64,
                  crop_box: tuple[int, int, int, int] = CROP_BOX, progress: bool = True,
                  limit: int | None = None) -> CelebA64:
    """Load CelebA (real or synthetic) cropped to `image_size`, decoding the JPEGs only on the first call, into
    `cache_dir`.

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
    cache = Path(cache_dir).expanduser()
    key = _cache_key(layout.image_dir, files, crop_box, image_size)
    target = cache / f"celeba_{image_size}px_{key[:20]}.npy"
    meta = {"key": key, "version": CACHE_VERSION, "image_dir": str(layout.image_dir), "count": len(files),
            "crop_box": list(crop_box), "image_size": image_size}
    if not _cache_valid(target, meta):
        try:
            cache.mkdir(parents=True, exist_ok=True)
            _build_cache(files, crop_box, image_size, target, meta, progress)
        except (OSError, WriteFailedError) as exc:  # read-only folder, full disk (PIL's errors are DataErrors)
            raise DataError(f"cannot write the image cache in {cache} ({exc}); pass a writable cache_dir (a run "
                            "uses $VAELIB_DATA/cache: set VAELIB_DATA).") from exc
    idx = np.array(keep, dtype=np.int64)
    return CelebA64(np.load(target, mmap_mode="r"), ann.attributes[idx], ann.attr_names, ann.partition[idx],
                    None if ann.identity is None else ann.identity[idx],
                    tuple(ann.filenames[i] for i in keep), layout.root, layout.kind,
                    rendered_attributes(layout.root))


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
