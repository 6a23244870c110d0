"""The one training loop skeleton: epochs of optimiser steps over shuffled device batches.

It knows nothing of the model: a loss function turns a batch into named scalar tensors ("loss" is the one
differentiated) and a weight; the loop sets the learning rate, steps the optimiser, clips, runs the after-step
hooks (an EMA update, a torch scheduler), and keeps weighted sums of every part on the device, so reading them
(a GPU sync) happens only where a log line or the epoch's row needs them. Its step and epoch counters are the
state a checkpoint saves and a resume restores.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch

Parts = dict[str, torch.Tensor]  # named scalar losses of one batch; "loss" is the one differentiated


@dataclass
class Loop:
    optimizer: torch.optim.Optimizer
    grad_clip: float | None = None  # max global gradient norm, None: no clipping
    # The parameters clipped, in the order their norms are summed (the model's order keeps the numbers of runs
    # before this loop); None: every parameter of the optimiser.
    clip_params: list[torch.Tensor] | None = None
    # The base learning rate of each step (from 0), set before the step in every parameter group, scaled by the
    # group's "lr_scale"; None leaves the learning rate to the optimiser (or to a scheduler in `after_step`).
    lr_at: Callable[[int], float] | None = None
    after_step: list[Callable[[], None]] = field(default_factory=list)
    step: int = 0  # optimiser steps taken
    epoch: int = 0  # completed epochs
    lr: float = math.nan  # base learning rate of the last step

    def optimise(self, parts: Parts) -> None:
        """One optimiser step on parts["loss"]."""
        if self.lr_at is not None:
            self.lr = self.lr_at(self.step)
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr * group.get("lr_scale", 1.0)
        else:
            self.lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.zero_grad(set_to_none=True)
        parts["loss"].backward()
        if self.grad_clip is not None:
            params = self.clip_params or [p for group in self.optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
        self.optimizer.step()
        for hook in self.after_step:
            hook()
        self.step += 1

    def run_epoch(self, batches: Iterable, loss: Callable[[object], tuple[Parts, float]], n_batches: int,
                  log_every: int = 0, on_log: Callable[[float, dict[str, float]], None] | None = None,
                  reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> tuple[dict[str, float], float]:
        """One pass over `batches` (`n_batches` of them): `loss(batch)` -> (parts, weight), one step each.

        Returns the weighted means of the parts over the epoch and its seconds. Every `log_every` steps and after
        the last batch, `on_log(fraction of the epoch done, running means)` sees the means so far; `reduce` maps
        the summed parts before they are read (the mean over data-parallel ranks).
        """
        start = time.perf_counter()
        sums, names, total = None, [], 0.0
        for i, batch in enumerate(batches):
            parts, weight = loss(batch)
            self.optimise(parts)
            values = torch.stack([v.detach() for v in parts.values()]) * weight
            sums, names = (values, list(parts)) if sums is None else (sums + values, names)
            total += weight
            if on_log is not None and ((log_every and self.step % log_every == 0) or i == n_batches - 1):
                on_log((i + 1) / n_batches, self._means(sums, names, total, reduce))
        return self._means(sums, names, total, reduce), time.perf_counter() - start

    @staticmethod
    def _means(sums: torch.Tensor, names: list[str], total: float, reduce) -> dict[str, float]:
        sums = sums if reduce is None else reduce(sums)
        return dict(zip(names, (sums / total).tolist(), strict=True))

    def fit(self, epochs: int, run_epoch: Callable[[], dict], end_epoch: Callable[[dict], None]) -> None:
        """Epochs until `epochs` are complete, from the current one (a resumed loop continues where it stopped):
        `run_epoch()` -> its history row, then `end_epoch(row)` (history, checkpoints, logging) once it counts."""
        while self.epoch < epochs:
            row = run_epoch()
            self.epoch += 1
            end_epoch(row)
