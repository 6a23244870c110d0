"""Synthetic CelebA: cartoon faces written in exactly the official CelebA on-disk layout and file formats.

Why: tests, CI and first runs need a dataset that the real loader (`vaelib.data.celeba`) reads unchanged and
that a VAE can learn in minutes, with attributes that are visible (so classifiers, attribute directions and
label guidance have something to find) and identities that recur (so identity transfer can be checked).

Each identity fixes the face geometry, skin tone, hair colour and style, sex, age and facial hair; each image
of it varies expression, lighting, background and accessories, with the face aligned on the eyes as in
`img_align_celeba`. Everything is drawn with PIL at twice the size and box-downsampled (antialiasing), then
written as a 178x218 JPEG like `img_align_celeba`, with the face inside the standard 148x148 crop box (people
and labels: `people`; drawing: `canvas` and `render`; this module plans the set and writes it). Determinism:
the plan comes from `seed`, identity k from (seed, k), image i from (seed, i), so the same (num_images, seed)
gives byte-identical files, whichever number of worker processes writes them.
"""

from __future__ import annotations

import json
import os
import shutil
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..atomic import atomic_write_text
from ..errors import ConfigError, DataError
from .attributes import CELEBA_ATTRIBUTES
from .people import RENDERED_ATTRIBUTES, Identity, sample_attributes, sample_identity
from .provenance import GENERATOR, MARKER, read_marker
from .render import render_face

GENERATOR_VERSION = 4  # bump whenever the output changes, so `ensure_synthetic_celeba` regenerates old sets
# CelebA's average. Fewer images per identity give more identities for the same number of images: attribute
# classifiers then see more people (hair style, face shape are traits of a person) at the same cost.
IMAGES_PER_IDENTITY = 20
_INCOMPLETE = "synthetic.incomplete"  # written first: marks a folder as ours while it is being (re)written
_JPEG_QUALITY = 75  # the official images use the IJG quality-75 tables with 4:2:0 chroma subsampling
_STREAM_PLAN, _STREAM_IDENTITY, _STREAM_IMAGE = 0, 1, 2  # independent SeedSequence streams


def _plan(num_images: int, seed: int, per_identity: int = IMAGES_PER_IDENTITY) -> tuple[np.ndarray, np.ndarray]:
    """Identity and partition of every image, in file order.

    About `per_identity` images per identity (CelebA's 20: 10..30), identities split ~80/10/10 between
    train/val/test with at least one each, files numbered train first, then val, then test, shuffled within a
    split, as in CelebA.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, _STREAM_PLAN]))
    k = max(3, round(num_images / per_identity))
    ids = rng.permutation(max(k, 10177))[:k] + 1  # CelebA numbers its 10,177 identities from 1
    extra = (num_images - k) * rng.uniform(0.5 * per_identity, 1.5 * per_identity, k)
    extra /= extra.sum() / (num_images - k) if num_images > k else 1.0
    counts = 1 + np.floor(extra).astype(np.int64)  # at least one image per identity
    short = num_images - int(counts.sum())
    counts[np.argsort(np.floor(extra) - extra, kind="stable")[:short]] += 1  # largest remainders first
    n_held = max(1, round(0.1 * k))
    split = np.zeros(k, dtype=np.int64)
    split[k - 2 * n_held:k - n_held], split[k - n_held:] = 1, 2
    order = [rng.permutation(np.repeat(ids[split == s], counts[split == s])) for s in (0, 1, 2)]
    partition = np.concatenate([np.full(o.size, s, dtype=np.int64) for s, o in enumerate(order)])
    return np.concatenate(order), partition


def _identity(seed: int, identity_id: int) -> Identity:
    rng = np.random.default_rng(np.random.SeedSequence([seed, _STREAM_IDENTITY, identity_id]))
    return sample_identity(rng)


def _make_image(job: tuple[int, Identity, int, str]) -> list[bool]:
    """Sample, draw and write image `index`; top-level so that worker processes can run it."""
    index, identity, seed, path = job
    rng = np.random.default_rng(np.random.SeedSequence([seed, _STREAM_IMAGE, index]))
    attributes = sample_attributes(identity, rng)
    render_face(identity, attributes, rng).save(path, "JPEG", quality=_JPEG_QUALITY)
    return [attributes[name] for name in CELEBA_ATTRIBUTES]


def _claim(base: Path) -> None:
    """Make `base` ours to (re)write; refuse a folder holding files we did not write (a real CelebA?)."""
    ours = (base / MARKER).exists() or (base / _INCOMPLETE).exists()
    if base.is_dir() and any(base.iterdir()) and not ours:
        raise DataError(f"{base} holds files that the synthetic generator did not write (a real CelebA?); "
                        "refusing to overwrite them: pass another root.")
    base.mkdir(parents=True, exist_ok=True)
    (base / _INCOMPLETE).touch()
    (base / MARKER).unlink(missing_ok=True)
    shutil.rmtree(base / "img_align_celeba", ignore_errors=True)  # images of an older, larger set
    (base / "img_align_celeba").mkdir()


def _check_args(num_images: int, seed: int) -> None:
    if not isinstance(num_images, (int, np.integer)) or num_images < 3:
        raise ConfigError(f"num_images must be an integer >= 3 (one identity per split), not {num_images!r}.")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, not {seed!r}.")


def generate_synthetic_celeba(root: str | os.PathLike, num_images: int, seed: int = 0, progress: bool = True,
                              workers: int = 1, per_identity: int = IMAGES_PER_IDENTITY) -> Path:
    """Write `num_images` synthetic faces in the torchvision CelebA layout under `<root>/celeba`; return it.

    Writes img_align_celeba/*.jpg, list_attr_celeba.txt, identity_CelebA.txt, list_eval_partition.txt,
    then the marker `synthetic.json` last. `workers` > 1 renders in that many processes; the files are the
    same either way (a script using it needs the usual `if __name__ == "__main__":` guard).
    """
    _check_args(num_images, seed)
    base = Path(root).expanduser() / "celeba"
    _claim(base)
    identity_of, partition = _plan(int(num_images), int(seed), int(per_identity))
    people = {int(i): _identity(seed, int(i)) for i in np.unique(identity_of)}
    names = [f"{i + 1:06d}.jpg" for i in range(num_images)]
    jobs = [(i, people[int(identity_of[i])], int(seed), str(base / "img_align_celeba" / names[i]))
            for i in range(num_images)]
    # tqdm wraps the iterator (its update() may return True, so it cannot be chained with `or`).
    tqdm_args = dict(total=num_images, desc="synthetic CelebA", unit="img", disable=not progress)
    if workers > 1:
        with get_context("spawn").Pool(workers) as pool:  # spawn: safe next to torch threads, unlike fork
            rows = list(tqdm(pool.imap(_make_image, jobs, chunksize=32), **tqdm_args))
    else:
        rows = [_make_image(job) for job in tqdm(jobs, **tqdm_args)]

    crlf = "\r\n"  # the official annotation files are CRLF throughout
    attr_lines = [str(num_images), " ".join(CELEBA_ATTRIBUTES) + " "]  # the official header ends in a space
    # as in the official file, the first value follows one space unpadded and the others are right-aligned
    # in 3 characters: "000001.jpg -1  1 -1 ...", but "000002.jpg 1 -1 ..."
    attr_lines += [f"{name} {'1' if row[0] else '-1'}" + "".join("  1" if v else " -1" for v in row[1:])
                   for name, row in zip(names, rows, strict=True)]
    atomic_write_text(base / "list_attr_celeba.txt", crlf.join(attr_lines) + crlf)
    atomic_write_text(base / "identity_CelebA.txt",
                  "".join(f"{n} {i}{crlf}" for n, i in zip(names, identity_of.tolist(), strict=True)))
    atomic_write_text(base / "list_eval_partition.txt",
                  "".join(f"{n} {s}{crlf}" for n, s in zip(names, partition.tolist(), strict=True)))
    marker = {"generator": GENERATOR, "version": GENERATOR_VERSION,
              "num_images": int(num_images), "seed": int(seed), "images_per_identity": int(per_identity),
              "identities": len(people),
              "images_per_split": np.bincount(partition, minlength=3).tolist(),
              "rendered_attributes": list(RENDERED_ATTRIBUTES)}  # read back as CelebA64.rendered_attributes
    atomic_write_text(base / MARKER, json.dumps(marker, indent=1))
    (base / _INCOMPLETE).unlink()
    return base


def ensure_synthetic_celeba(root: str | os.PathLike, num_images: int, seed: int = 0, progress: bool = True,
                            workers: int = 1, per_identity: int = IMAGES_PER_IDENTITY) -> Path:
    """Return `<root>/celeba` if it holds the complete set for (num_images, seed, version); else write it."""
    _check_args(num_images, seed)
    base = Path(root).expanduser() / "celeba"
    marker = read_marker(base)
    wanted = {"version": GENERATOR_VERSION, "num_images": int(num_images), "seed": int(seed),
              "images_per_identity": int(per_identity)}
    marker.setdefault("images_per_identity", IMAGES_PER_IDENTITY)  # sets written before the option had 20
    if all(marker.get(key) == value for key, value in wanted.items()):
        print(f"synthetic CelebA: reusing {num_images:,} images (seed {seed}) in {base}")
        return base
    print(f"synthetic CelebA: generating {num_images:,} images (seed {seed}) in {base}")
    return generate_synthetic_celeba(root, num_images, seed, progress, workers, per_identity)
