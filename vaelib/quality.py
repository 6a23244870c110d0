"""Reconstruction quality of a trained VAE: PSNR of test images decoded from their posterior means."""

from __future__ import annotations

import math

import numpy as np
import torch

from .data.batches import map_batches


@torch.no_grad()
def reconstruction_psnr(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 256) -> dict:
    """PSNR in dB (peak 1 on [0, 1] pixels) of uint8 images (N, 3, H, W) against decode(mu): mean over images
    with its standard error, and the mean squared error per pixel value. z = mu is what the reconstruction
    figures show; a sampled z would add the posterior's noise."""
    def squared_error(x: torch.Tensor) -> torch.Tensor:
        return (model.decode(model.encode(x)[0]).float() - x).pow(2).flatten(1).mean(1)

    mse = map_batches(squared_error, images, batch_size, next(model.parameters()).device).double().numpy()
    psnr = -10 * np.log10(np.maximum(mse, 1e-12))
    se = float(psnr.std(ddof=1) / math.sqrt(len(psnr))) if len(psnr) > 1 else math.nan
    return {"psnr_db": float(psnr.mean()), "psnr_db_se": se, "mse": float(mse.mean()), "num_images": len(psnr),
            "decoded_from": "posterior mean"}
