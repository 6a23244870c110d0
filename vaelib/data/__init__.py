"""Datasets: real CelebA (`celeba`) and CelebA-format synthetic faces (`synthetic`), as uint8 crops."""

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
