"""Moving between images and the VAE's latent space in batches: the shared first and last step of every edit."""

from __future__ import annotations

import numpy as np
import torch

from ..data.batches import map_batches
from ..data.pixels import images_tensor
from ..models.vae import VAE


def pick(indices: np.ndarray, n: int, seed: int) -> np.ndarray:
    """`n` of `indices` (all if fewer), chosen by a seeded shuffle and returned sorted: fixed example faces."""
    chosen = np.random.default_rng(seed).permutation(indices)[:n]
    return np.sort(chosen)


@torch.no_grad()
def encode(vae: VAE, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Posterior means mu (N, latent_dim) on the CPU for uint8 or [0, 1] float images (N, 3, H, W)."""
    return map_batches(lambda x: vae.encode(x)[0], images, batch_size, next(vae.parameters()).device)


@torch.no_grad()
def decode(vae: VAE, z: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Mean images (N, 3, H, W) on [0, 1], on the CPU, for latents (N, latent_dim) on any device."""
    return map_batches(vae.decode, z, batch_size, next(vae.parameters()).device)


def encode_split(vae: VAE, data, split: str, n: int, seed: int) -> tuple[np.ndarray, torch.Tensor]:
    """Indices of up to `n` images of `split` (seeded choice) and their posterior means."""
    idx = pick(data.split(split), n, seed)
    return idx, encode(vae, images_tensor(data, idx))
