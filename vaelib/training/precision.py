"""Per-device fast-path choices of the VAE trainer: bf16 autocast where the hardware computes bf16."""

from __future__ import annotations

import os

import torch

from ..errors import ConfigError

BF16_ENV = "VAELIB_BF16"  # "0" trains in fp32 even where bf16 is native (reproduces an AVX2-only CPU anywhere)


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bf16 in hardware, so that bf16 autocast is a speed-up, not an emulation, and
    $VAELIB_BF16 does not switch it off."""
    setting = os.environ.get(BF16_ENV, "auto")
    if setting not in ("auto", "0", "1"):
        raise ConfigError(f"{BF16_ENV}={setting!r}: use 0 (fp32), 1 (bf16 autocast) or auto (bf16 where native).")
    if setting != "auto":
        return setting == "1"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":  # torch has no public query for this; these helpers exist in the pinned torch
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    # MPS: bf16 there needs macOS 14 and its speed was never measured on Apple hardware here, so fp32.
    return False

