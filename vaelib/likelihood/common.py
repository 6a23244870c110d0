"""What every likelihood estimate shares: float32 evaluation, the image-batch check, the standard error."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import ConfigError

LN2 = math.log(2.0)


def float32(device: torch.device):
    """Disable autocast: the bounds are sums of ~1e4 nats, far beyond bf16/fp16 precision."""
    return torch.autocast(device_type=device.type, enabled=False)


def device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def check_images(images, batch_size: int, require_uint8: bool = False) -> None:
    """The image-batch convention: a torch tensor (N, C, H, W), uint8 pixels (or, where allowed, floats on [0, 1])."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, not {batch_size}.")
    if not torch.is_tensor(images):
        raise ConfigError(f"images must be a torch tensor (N, C, H, W), not {type(images).__name__}: take them "
                          "from the dataset with vaelib.data.pixels.images_tensor.")
    if images.dtype != torch.uint8 and (require_uint8 or not images.is_floating_point()):
        raise ConfigError(f"images must be uint8 (N, C, H, W) pixels, not {images.dtype}.")
    if images.dim() < 2 or len(images) == 0:
        raise ConfigError(f"images must be a non-empty batch (N, C, H, W), got shape {tuple(images.shape)}.")


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.double().numpy()


def mean_se(values: np.ndarray) -> tuple[float, float]:
    """Mean and its standard error std/sqrt(n) over images (nan for a single image)."""
    n = len(values)
    se = float(np.std(values, ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return float(np.mean(values)), se
