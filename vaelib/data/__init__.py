"""Datasets: real CelebA and CelebA-format synthetic faces, loaded alike as uint8 crops (`CelebA64`).

Loading: `celeba_files` (find a copy, parse its annotations), `celeba` (decode, cache, `CelebA64`), `provenance`
(what a folder says about its source). Synthetic faces: `people` (identities, labels), `canvas` and `render`
(drawing), `synthetic` (plan and write a set). Model input: `pixels` (uint8 torch tensors), `batches` (training
batches and `map_batches`, the batched-inference loop).
"""

from .attributes import CELEBA_ATTRIBUTES, CROP_BOX
from .celeba import CelebA64, load_celeba64
from .celeba_files import resolve_celeba_root
from .people import RENDERED_ATTRIBUTES
from .synthetic import ensure_synthetic_celeba, generate_synthetic_celeba

__all__ = [
    "CELEBA_ATTRIBUTES",
    "CROP_BOX",
    "RENDERED_ATTRIBUTES",
    "CelebA64",
    "ensure_synthetic_celeba",
    "generate_synthetic_celeba",
    "load_celeba64",
    "resolve_celeba_root",
]
