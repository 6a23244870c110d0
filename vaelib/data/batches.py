"""Minibatches straight from a uint8 image tensor, on whatever device it lives on.

No DataLoader workers or JPEG decoding per step: the order is a permutation drawn on the tensor's device
and horizontal flips (faces are left-right symmetric) are drawn there too, both from one seeded
generator, so an epoch's batches are a function of (images, seed) alone.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from .pixels import to_float


def batch_indices(n: int, batch_size: int, generator: torch.Generator, shuffle: bool
                  ) -> Iterator[torch.Tensor | slice]:
    """Indices of consecutive batches of `n` items: a fresh permutation when shuffling, else in order."""
    order = torch.randperm(n, generator=generator, device=generator.device) if shuffle else None
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size] if shuffle else slice(start, start + batch_size)


def random_hflip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image of the batch mirrored left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], generator=generator, device=x.device) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)


def device_batches(images: torch.Tensor, batch_size: int, generator: torch.Generator, train: bool
                   ) -> Iterator[torch.Tensor]:
    """Float batches on [0, 1]; training batches are shuffled and randomly flipped."""
    for idx in batch_indices(images.shape[0], batch_size, generator, shuffle=train):
        x = to_float(images[idx])
        yield random_hflip(x, generator) if train else x
