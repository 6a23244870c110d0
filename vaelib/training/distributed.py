"""Data-parallel training under torchrun: one process per device, gradients averaged by DistributedDataParallel.

    torchrun --standalone --nproc_per_node=N -m vaelib train --run-dir DIR --profile P ...

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them (or with WORLD_SIZE=1) nothing here is used and
training is the single-process code path, bit for bit.

The batch rule: the global batch is the profile's `batch_size`, split evenly over the processes (each computes
batch_size / WORLD_SIZE images of every step), so the learning rate is the profile's too. Every rank draws the
same per-epoch permutation, flips and reparameterisation noise from the same seeds and keeps its rows of each
global batch, so N processes compute what one process computes on the whole batch, up to the summation order
of the gradient average. Rank 0 alone holds the run lock and writes checkpoints, metrics and logs; every rank
resumes from the same last.pt.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ..errors import ConfigError

# Rank 0 alone generates the synthetic set or builds the CelebA cache on first use while the other ranks wait at
# a barrier; that can take tens of minutes, longer than the default collective timeouts (NCCL 10 min).
TIMEOUT = timedelta(minutes=60)


@dataclass(frozen=True)
class Group:
    """This process's place in a torchrun job, and the few collectives the trainer needs."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: torch.nn.Module) -> DistributedDataParallel:
        return DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def barrier(self) -> None:
        dist.barrier()

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        """The average of `t` over the ranks (the same tensor on every rank afterwards)."""
        total = t.detach().clone()
        dist.all_reduce(total)  # SUM: ReduceOp.AVG exists for NCCL only
        return total / self.world_size

    def from_main(self, t: torch.Tensor) -> torch.Tensor:
        """Rank 0's value of `t` on every rank: decisions taken on it (NaN, best epoch) are then the same."""
        out = t.detach().clone()
        dist.broadcast(out, src=0)
        return out


def init_from_env(device: torch.device, batch_size: int) -> Group | None:
    """Join the torchrun job described by the environment; None when this is a single process."""
    env = os.environ
    world = int(env.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    if "RANK" not in env or "LOCAL_RANK" not in env:
        raise ConfigError("WORLD_SIZE is set but RANK or LOCAL_RANK is not: start data-parallel training with "
                          "torchrun (torchrun --nproc_per_node=N -m vaelib train ...).")
    rank, local_rank = int(env["RANK"]), int(env["LOCAL_RANK"])
    if batch_size % world:
        raise ConfigError(f"the batch of {batch_size} images does not split evenly over {world} processes; choose a "
                          f"batch size that is a multiple of {world} (--batch-size) or another process count.")
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"this node runs {env.get('LOCAL_WORLD_SIZE', local_rank + 1)} processes but sees "
                              f"{torch.cuda.device_count()} GPU(s); use --nproc_per_node of at most that many.")
        device = torch.device("cuda", local_rank)  # one GPU per process, whatever --device named
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise ConfigError(f"data-parallel training runs on CUDA (NCCL) or the CPU (gloo), not on {device.type}; "
                          f"train on {device.type} with one process (python -m vaelib train).")
    die_with_launcher()
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=TIMEOUT, device_id=device if backend == "nccl" else None)
    return Group(rank, world, device)


def die_with_launcher() -> None:
    """torchrun starts each worker in a session of its own, so a kill -9 of the launcher (or of its process group)
    would leave the ranks training on as orphans, writing the run folder beside the rerun; on Linux the kernel
    kills them with their parent instead (elsewhere they stop at their next collective's timeout)."""
    if sys.platform != "linux":
        return
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL))
    if os.getppid() == 1:  # the launcher died before the call above: no signal will come
        os.kill(os.getpid(), signal.SIGKILL)


@contextmanager
def closing(group: Group | None) -> Iterator[None]:
    """Leave the process group when training ends (torchrun expects every rank to)."""
    try:
        yield
    finally:
        if group is not None and dist.is_initialized():
            dist.destroy_process_group()


@contextmanager
def main_first(group: Group | None) -> Iterator[None]:
    """Run the body on rank 0 first, then on the other ranks: rank 0 creates shared files (the data cache) that the
    others only read."""
    if group is not None and not group.is_main:
        group.barrier()
    yield
    if group is not None and group.is_main:
        group.barrier()


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside torch.compile's and DDP's wrappers (the loss reads the VAE's log_sigma from it)."""
    model = getattr(model, "_orig_mod", model)
    return model.module if isinstance(model, DistributedDataParallel) else model


def quiet(message: str) -> None:
    """The log of ranks > 0: rank 0 says everything once."""
