"""Find a copy of CelebA on disk and parse its official annotation files (attributes, partition, identities).

Accepted layouts (root from the `root` argument or the `CELEBA_ROOT` environment variable, read only by
`requested_celeba_root`): torchvision `<root>/celeba/{img_align_celeba/, list_attr_celeba.txt,
list_eval_partition.txt, identity_CelebA.txt}` (root may also be the `celeba/` folder itself, or any folder
holding those files: "flat"), and Kaggle `jessicali9530/celeba-dataset` (`img_align_celeba/img_align_celeba/`,
`*.csv`, no identities). The attribute file defines the image list.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .attributes import CELEBA_ATTRIBUTES

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


def requested_celeba_root(root: str | os.PathLike | None = None) -> str | None:
    """The CelebA folder asked for: `root` when given and not empty, else $CELEBA_ROOT, else None.

    The one place that reads CELEBA_ROOT, so the CLI, the batch runner and the notebooks agree on it."""
    return os.fspath(root) if root else os.environ.get("CELEBA_ROOT") or None


def resolve_celeba_root(root: str | os.PathLike | None = None) -> CelebALayout:
    """Find the CelebA layout at `root` (or $CELEBA_ROOT); DataError with download instructions if none."""
    root = requested_celeba_root(root)
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
