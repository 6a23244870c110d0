"""Minibatches straight from a uint8 image tensor, on whatever device it lives on.

No DataLoader workers or JPEG decoding per step: the order is a permutation drawn on the tensor's device
and horizontal flips (faces are left-right symmetric) are drawn there too, both from one seeded
generator, so an epoch's batches are a function of (images, seed) alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

import torch
from tqdm.auto import tqdm

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


class Shard(NamedTuple):
    """One rank's part of a global training batch (vaelib.training.distributed)."""

    x: torch.Tensor  # this rank's images, float on [0, 1], flipped as the global batch's draw says
    rows: slice  # their rows in the global batch (reparameterisation noise is drawn for it and sliced alike)
    batch_size: int  # images in the global batch
    weight: float  # rows / (batch_size / world_size): DDP's mean over ranks of weight x local mean = global mean


def shard_batches(images: torch.Tensor, batch_size: int, generator: torch.Generator, rank: int, world_size: int
                  ) -> Iterator[Shard]:
    """Rank `rank`'s part of each training batch of `device_batches`: every rank draws the same permutation and
    flips from the same seed and keeps its consecutive share of every global batch, batch_size / world_size
    images (the last, shorter batch is split as evenly as it goes)."""
    for idx in batch_indices(images.shape[0], batch_size, generator, shuffle=True):
        flip = torch.rand(len(idx), generator=generator, device=generator.device) < 0.5  # as random_hflip draws
        sizes = [len(part) for part in idx.tensor_split(world_size)]
        start = sum(sizes[:rank])
        rows, weight = slice(start, start + sizes[rank]), sizes[rank] * world_size / len(idx)
        if sizes[rank] == 0:
            # A last batch with fewer images than ranks: this rank still takes part in the gradient average (DDP
            # needs every rank's backward), on a stand-in image at weight 0.
            rows, weight = slice(0, 1), 0.0
        x = to_float(images[idx[rows]])
        yield Shard(torch.where(flip[rows].view(-1, 1, 1, 1), x.flip(-1), x), rows, len(idx), weight)


@torch.no_grad()
def map_batches(fn: Callable[[torch.Tensor], torch.Tensor | tuple[torch.Tensor, ...]], items: torch.Tensor,
                batch_size: int, device: torch.device | str, desc: str | None = None
                ) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """`fn` over `items` in batches on `device`, results concatenated on the CPU: the one batched-inference loop.

    uint8 images become float on [0, 1] on the device (`to_float`); any other tensor (latents) is moved as it is.
    `fn` returns a tensor or a tuple of tensors per batch; the result has the same shape. Half-precision parts
    (autocast) become float32; other dtypes (uint8 images, float64 sums) are kept. `desc` labels a progress bar.
    """
    parts = []
    with tqdm(total=items.shape[0], desc=desc, unit="img", disable=desc is None) as bar:
        for start in range(0, items.shape[0], batch_size):
            out = fn(to_float(items[start:start + batch_size].to(device)))
            parts.append(tuple(map(_to_host, out)) if isinstance(out, tuple) else _to_host(out))
            bar.update(min(batch_size, items.shape[0] - start))
    if parts and isinstance(parts[0], tuple):
        return tuple(torch.cat(column) for column in zip(*parts, strict=True))
    return torch.cat(parts)


def _to_host(t: torch.Tensor) -> torch.Tensor:
    return (t.float() if t.dtype in (torch.float16, torch.bfloat16) else t).cpu()
