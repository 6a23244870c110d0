"""The one conversion from stored pixels to model input: uint8 {0..255} -> float32 on [0, 1]."""

from __future__ import annotations

import torch


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 / 255, done after batching and on the device; float images pass through."""
    return images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()
