"""Stored pixels to model input: a uint8 tensor out of the dataset, then float32 on [0, 1]."""

from __future__ import annotations

import numpy as np
import torch


def images_tensor(data, idx) -> torch.Tensor:
    """uint8 (N, 3, H, W) CPU tensor of `data.images[idx]`: one copy out of the (read-only) memmap."""
    return torch.from_numpy(np.ascontiguousarray(data.images[np.asarray(idx)]))


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 / 255, done after batching and on the device; float images pass through."""
    return images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()
