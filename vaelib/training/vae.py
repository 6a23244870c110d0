"""The VAE trainer: uint8 data batched on the device, KL warm-up, validation every epoch, atomic checkpoints and
exact resume (`resume`), evaluation weights (`weights`), data parallelism under torchrun (`distributed`).

On CUDA the fast path is on: bf16 autocast, channels_last and optionally torch.compile; Adam is fused on every
device; on a CPU with hardware bf16 (AVX512-BF16 or AMX) training runs under bf16 autocast too (`precision`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch

from ..checkpoint import save_checkpoint
from ..config import TrainConfig, describe_validation_loss
from ..data.batches import Shard, device_batches, shard_batches
from ..errors import TrainingDivergedError
from ..losses import VGGPerceptual, kl_beta, kl_standard_normal, reconstruction_loss
from ..models.vae import VAE, ModelConfig
from . import distributed
from .loop import Loop
from .precision import native_bf16
from .resume import Resumable
from .weights import best_state, cpu_copy, ensure_best, moving_average

# Adam moves a parameter by about lr per step, so a log-sigma that starts at log(0.1) would need ~350 steps at lr
# 2e-3 to reach the reconstruction error of an early model; until then the likelihood is off by the mismatch
# (a short run ended above 8 bits/dim). Ten times the learning rate lets sigma follow the error within tens of steps.
SIGMA_LR_SCALE = 10.0


def parameter_groups(model: VAE, lr: float) -> list[dict]:
    """Adam's parameter groups: the network at `lr`, the pixel log-sigma (if learned) at SIGMA_LR_SCALE x lr;
    `lr_scale` is kept in each group so schedules scale every group alike."""
    sigma = [model.log_sigma] if model.log_sigma is not None else []
    rest = [p for p in model.parameters() if all(p is not q for q in sigma)]
    groups = [{"params": rest, "lr": lr, "lr_scale": 1.0}]
    if sigma:
        groups.append({"params": sigma, "lr": lr * SIGMA_LR_SCALE, "lr_scale": SIGMA_LR_SCALE})
    return groups


class Trainer(Resumable):
    """Owns model, optimiser and the per-step loss; `fit` runs epochs of the shared `Loop` and checkpoints them."""

    def __init__(self, model_cfg: ModelConfig, train_cfg: TrainConfig, device: torch.device,
                 bf16: bool | None = None, channels_last: bool | None = None,
                 dist: distributed.Group | None = None):
        self.model_cfg, self.cfg, self.device = model_cfg, train_cfg, device
        self.dist = dist  # a torchrun job's process group (training.distributed); None trains in this process alone
        # None picks per device (benchmarks/RESULTS.md has the CPU measurements):
        # - bf16 autocast wherever the hardware computes in bf16: CUDA, and CPUs with AVX512-BF16 or AMX, where
        #   oneDNN's bf16 convolutions are faster than fp32 (elsewhere bf16 is emulated and slower than fp32);
        # - channels_last on CUDA only: on CPU it gains little in fp32 and loses in bf16, where GroupNorm's NHWC
        #   bf16 kernel is much slower than its NCHW one.
        # bf16=False, channels_last=False is the plain fp32 NCHW path the equivalence test compares against.
        self.bf16 = native_bf16(device) if bf16 is None else bf16
        self.channels_last = device.type == "cuda" if channels_last is None else channels_last
        torch.manual_seed(train_cfg.seed)  # the initial weights depend on the seed alone
        self.model = VAE(model_cfg).to(device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        # Fused Adam (one kernel for all parameters; the pinned torch has it on CUDA, MPS and the CPU): on the CPU
        # 3.4 ms per step of the demo model against 10 ms for the for-each Adam (benchmarks/RESULTS.md).
        self.optimizer = torch.optim.Adam(parameter_groups(self.model, train_cfg.lr), lr=train_cfg.lr,
                                          weight_decay=train_cfg.weight_decay, fused=True)
        # DDP wraps the module (its hooks average the gradients over ranks); compiling goes around the wrapper.
        self.step_model = self.model if dist is None else dist.wrap(self.model)
        # Compiling pays on CUDA only: on a small CPU it cost minutes and ran slower than eager bf16.
        if train_cfg.compile and device.type == "cuda":
            self.step_model = torch.compile(self.step_model)
        self.ema = moving_average(self.model, train_cfg.ema_decay)
        self.loop = Loop(self.optimizer, clip_params=list(self.model.parameters()))
        if self.ema is not None:
            self.loop.after_step.append(lambda: self.ema.update_parameters(self.model))
        self.perceptual = VGGPerceptual(train_cfg.vgg_weights).to(device) if train_cfg.perceptual_weight > 0 else None
        self.best_val = math.inf
        self.history: dict = {"epochs": [], "steps": [],
                              "validation_loss": describe_validation_loss(model_cfg, train_cfg)}
        # The best epoch's weights (CPU copy) also go into last.pt, so best.pt can always be rebuilt from it.
        self.best_model: dict | None = None
        self.best_epoch = 0
        self.resumed = False
        self.checkpoint_dir: Path | None = None  # set by fit
        self.rerun_command: str | None = None  # the CLI line that resumes this run; named in the divergence error

    @property
    def is_main(self) -> bool:
        """Whether this process writes checkpoints and logs: always, unless it is rank > 0 of a torchrun job."""
        return self.dist is None or self.dist.is_main

    @property
    def eval_model(self) -> VAE:
        """The weights that are validated, saved as best and used downstream: the EMA where it is on."""
        return self.model if self.ema is None else self.ema.module

    def autocast(self):
        # bf16 keeps fp32's exponent range, so no loss scaling (and no GradScaler) is needed.
        return torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else nullcontext()

    def losses(self, x: torch.Tensor, beta: float, model: torch.nn.Module | None = None,
               noise: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Mean over the batch of per-image recon, KL and loss = recon + beta * KL (+ perceptual)."""
        model = self.step_model if model is None else model
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self.autocast():
            out = model(x) if noise is None else model(x, noise=noise)
        # Losses in fp32: per-image sums over 12,288 values lose too much in bf16.
        recon = reconstruction_loss(distributed.unwrap(model), out.reconstruction.float(), x)
        kl = kl_standard_normal(out.mu.float(), out.logvar.float())
        loss = recon + beta * kl
        if self.perceptual is not None:
            loss = loss + self.cfg.perceptual_weight * self.perceptual(out.reconstruction.float(), x)
        return {"loss": loss.mean(), "recon": recon.mean(), "kl": kl.mean()}

    def shard_losses(self, shard: Shard, beta: float) -> dict[str, torch.Tensor]:
        """A data-parallel rank's losses on its part of the global batch, weighted so that DDP's average over the
        ranks is the global batch's mean. The reparameterisation noise is drawn for the whole global batch (every
        rank's generator is in the same state) and this rank keeps its rows: the numbers one process would use."""
        noise = torch.randn(shard.batch_size, self.model_cfg.latent_dim, device=self.device)[shard.rows]
        parts = self.losses(shard.x, beta, noise=noise)
        return {k: v * shard.weight for k, v in parts.items()}

    def _across_ranks(self, sums: torch.Tensor) -> torch.Tensor:
        # Every rank then logs and NaN-checks the same global numbers, so all of them stop together.
        return sums if self.dist is None else self.dist.mean(sums)

    def train_epoch(self, images: torch.Tensor, progress: bool, log: Callable[[str], None]) -> dict:
        from tqdm.auto import tqdm

        cfg, epoch = self.cfg, self.loop.epoch
        beta = kl_beta(epoch, cfg.kl_warmup_epochs)
        seed = cfg.seed * 100_003 + epoch
        torch.manual_seed(seed)  # reparameterisation noise of this epoch
        gen = torch.Generator(device=self.device).manual_seed(seed)
        self.model.train()
        n_batches = math.ceil(images.shape[0] / cfg.batch_size)
        batches = (device_batches(images, cfg.batch_size, gen, train=True) if self.dist is None else
                   shard_batches(images, cfg.batch_size, gen, self.dist.rank, self.dist.world_size))
        bar = tqdm(batches, total=n_batches,
                   desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress, leave=False)
        total_steps = cfg.epochs * n_batches
        # Set per epoch: a resume may have lowered lr or grad_clip (`_adopt_lowered`).
        self.loop.lr_at, self.loop.grad_clip = (lambda step: cfg.lr_at(step, total_steps)), cfg.grad_clip

        def step_loss(x) -> tuple[dict[str, torch.Tensor], float]:
            return (self.losses(x, beta) if self.dist is None else self.shard_losses(x, beta)), 1.0

        def on_log(done: float, means: dict[str, float]) -> None:
            # Reading the loss syncs the GPU, so it is checked here rather than every step.
            self._check_finite(means["loss"], "training loss")
            self.history["steps"].append({"step": self.loop.step, "epoch": epoch + done, **means, "beta": beta,
                                          "lr": self.loop.lr})
            if not progress:
                log(f"epoch {epoch + 1} step {self.loop.step}: loss {means['loss']:.1f} recon {means['recon']:.1f} "
                    f"kl {means['kl']:.1f}")

        means, seconds = self.loop.run_epoch(bar, step_loss, n_batches, cfg.log_every, on_log, self._across_ranks)
        row = {"epoch": epoch + 1, "beta": beta, "train_loss": means["loss"], "train_recon": means["recon"],
               "train_kl": means["kl"], "seconds": seconds, "images_per_s": images.shape[0] / seconds}
        if self.dist is not None:
            row["processes"] = self.dist.world_size  # images_per_s is then the whole job's
        return row

    @torch.no_grad()
    def evaluate(self, images: torch.Tensor) -> dict:
        """Validation loss of `eval_model` at beta = 1, comparable across the epochs of the warm-up (for a
        Gaussian model the negative ELBO under its continuous density; see `describe_validation_loss`)."""
        model = self.eval_model.eval()
        totals = torch.zeros(3, device=self.device)
        gen = torch.Generator(device=self.device).manual_seed(0)
        for x in device_batches(images, self.cfg.batch_size, gen, train=False):
            parts = self.losses(x, beta=1.0, model=model)
            totals += x.shape[0] * torch.stack([parts["loss"], parts["recon"], parts["kl"]])
        if self.dist is not None:  # every rank validates the whole set; rank 0's numbers decide for all
            totals = self.dist.from_main(totals)
        loss, recon, kl = (totals / images.shape[0]).tolist()
        return {"val_loss": loss, "val_recon": recon, "val_kl": kl}

    def _check_finite(self, value: float, what: str) -> None:
        if math.isfinite(value):
            return
        # Only claim a good checkpoint when one exists (last.pt is written only after a finite epoch, and a NaN one
        # is refused on load, so an existing last.pt is a good one).
        last = self.checkpoint_dir / "last.pt" if self.checkpoint_dir is not None else None
        kept = (f"the last good checkpoint is kept ({last}), so a rerun resumes from it" if last and last.is_file()
                else "no epoch finished, so there is no checkpoint and a rerun starts afresh")
        lr, clip = self.cfg.lr, self.cfg.grad_clip
        how = (f"`{self.rerun_command} --lr {lr / 2:.2g} --grad-clip {min(clip, 10.0) / 2:g}`" if self.rerun_command
               else f"TrainConfig(lr={lr / 2:.2g}, grad_clip={min(clip, 10.0) / 2:g})")
        raise TrainingDivergedError(
            f"the {what} became {value} in epoch {self.loop.epoch + 1} (step {self.loop.step}); {kept}: rerun with a "
            f"lower learning rate (now {lr:.2g}) or a tighter gradient clip (now {clip:g}), e.g. {how}."
        )

    def fit(self, train_images: torch.Tensor, val_images: torch.Tensor, checkpoint_dir, progress: bool = True,
            log: Callable[[str], None] = print, on_epoch: Callable[[dict], None] | None = None) -> dict:
        """Train until `cfg.epochs` completed epochs, resuming from checkpoint_dir/last.pt if present."""
        self.checkpoint_dir = checkpoint_dir = Path(checkpoint_dir)
        last, best = checkpoint_dir / "last.pt", checkpoint_dir / "best.pt"
        if not self.is_main:  # rank 0 alone logs and writes; the other ranks compute the same numbers
            progress, log, on_epoch = False, distributed.quiet, None
        self.resume(checkpoint_dir, log)
        train_images, val_images = train_images.to(self.device), val_images.to(self.device)

        def run_epoch() -> dict:
            row = self.train_epoch(train_images, progress, log)
            row.update(self.evaluate(val_images))
            # A last step can turn the weights NaN after a finite training loss: never checkpoint such an epoch.
            self._check_finite(row["val_loss"], "validation loss")
            return row

        def end_epoch(row: dict) -> None:
            self.history["epochs"].append(row)
            if row["val_loss"] < self.best_val:
                self.best_val, self.best_epoch, self.best_model = row["val_loss"], self.loop.epoch, cpu_copy(
                    self.eval_model)
                if self.is_main:
                    save_checkpoint(best_state(self.state()), best)
            if self.is_main:
                save_checkpoint(self.state(), last)  # after best.pt: a crash in between only repeats the epoch
            if self.dist is not None:
                # No rank starts the next epoch before last.pt holds this one, so a kill at any moment sends every
                # rank back to the same file.
                self.dist.barrier()
            log(f"epoch {self.loop.epoch}/{self.cfg.epochs}: train {row['train_loss']:.1f} val {row['val_loss']:.1f} "
                f"(recon {row['val_recon']:.1f}, kl {row['val_kl']:.1f}) {row['images_per_s']:.0f} img/s")
            if on_epoch is not None:
                on_epoch(self.history)

        self.loop.fit(self.cfg.epochs, run_epoch, end_epoch)
        if self.loop.epoch and self.is_main:
            ensure_best(checkpoint_dir, log)  # a finished run with a damaged best.pt heals here, not in a dead end
        return self.history
