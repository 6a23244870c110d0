"""Training loop for the VAE: uint8 data batched on the device, KL warm-up, validation every epoch,
atomic checkpoints, and exact resume after a crash.

Resume is exact because every epoch reseeds its own randomness (data order, flips, reparameterisation
noise) from (seed, epoch): a run restarted from the end-of-epoch checkpoint replays the same numbers.
On CUDA the fast path is on: bf16 autocast, channels_last, fused Adam and optionally torch.compile; on a
CPU with hardware bf16 (AVX512-BF16 or AMX) training runs under bf16 autocast too.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from . import distributed
from .atomic import check_writable, remove_stale_temps
from .checkpoint import check_config, load_checkpoint, save_checkpoint, strip_compile_prefix
from .config import (
    ModelConfig,
    TrainConfig,
    config_to_dict,
    describe_loss,
    describe_validation_loss,
    model_config_from_dict,
    override,
)
from .data.batches import Shard, device_batches, shard_batches
from .data.pixels import images_tensor
from .errors import CheckpointError, ConfigError, TrainingDivergedError
from .losses import VGGPerceptual, kl_beta, kl_standard_normal, reconstruction_loss
from .models import VAE, count_parameters

# Train-config fields that may change between a run and its resume without changing the numbers.
RESUMABLE_CHANGES = {"epochs", "log_every", "compile", "vgg_weights"}
BF16_ENV = "VAELIB_BF16"  # "0" trains in fp32 even where bf16 is native (reproduces an AVX2-only CPU anywhere)
# Fields a resume may lower: the way out of a diverged run. A request above the checkpoint's value (the profile's
# default, say, after `train --lr` recovered a run) continues at the checkpoint's value with a notice: raising them
# mid-run is another experiment, and refusing would leave `run`, which has no --lr, no way to finish the folder.
LOWERABLE_ON_RESUME = ("lr", "grad_clip")


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


def fused_adam(device: torch.device) -> bool:
    """Fused Adam (one kernel for all parameters) on CUDA and MPS, which have the kernel in the pinned torch. The
    CPU has one too, but keeps the for-each Adam so that CPU runs stay bit-identical to those before it."""
    return device.type in ("cuda", "mps")


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


class Trainer:
    """Owns model, optimiser and the per-step loss; `fit` runs epochs and checkpoints them."""

    def __init__(self, model_cfg: ModelConfig, train_cfg: TrainConfig, device: torch.device,
                 bf16: bool | None = None, channels_last: bool | None = None,
                 dist: distributed.Group | None = None):
        self.model_cfg, self.cfg, self.device = model_cfg, train_cfg, device
        self.dist = dist  # a torchrun job's process group (vaelib.distributed); None trains in this process alone
        # None picks per device (benchmarks/RESULTS.md has the CPU measurements):
        # - bf16 autocast wherever the hardware computes in bf16: CUDA, and CPUs with AVX512-BF16 or AMX, where
        #   oneDNN's bf16 convolutions run ~2x fp32 (elsewhere bf16 is emulated and slower than fp32);
        # - channels_last on CUDA only: on CPU it gains <10% in fp32 and loses in bf16, where GroupNorm's NHWC
        #   bf16 kernel is ~5x slower than its NCHW one.
        # bf16=False, channels_last=False is the plain fp32 NCHW path the equivalence test compares against.
        self.bf16 = native_bf16(device) if bf16 is None else bf16
        self.channels_last = device.type == "cuda" if channels_last is None else channels_last
        torch.manual_seed(train_cfg.seed)  # the initial weights depend on the seed alone
        self.model = VAE(model_cfg).to(device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(parameter_groups(self.model, train_cfg.lr), lr=train_cfg.lr,
                                          weight_decay=train_cfg.weight_decay, fused=fused_adam(device))
        # DDP wraps the module (its hooks average the gradients over ranks); compiling goes around the wrapper.
        self.step_model = self.model if dist is None else dist.wrap(self.model)
        # Compiling pays on CUDA only: on the 2-core CPU it cost ~2 min and ran slower than eager bf16.
        if train_cfg.compile and device.type == "cuda":
            self.step_model = torch.compile(self.step_model)
        # Evaluation weights: an exponential moving average of the trained ones (torch's own implementation;
        # buffers are copied, GroupNorm has none that learn). A short CPU run gains most from it.
        self.ema = (AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(train_cfg.ema_decay), use_buffers=True)
                    if train_cfg.ema_decay > 0 else None)
        self.perceptual = VGGPerceptual(train_cfg.vgg_weights).to(device) if train_cfg.perceptual_weight > 0 else None
        self.epoch = 0  # completed epochs
        self.step = 0
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

        cfg, epoch = self.cfg, self.epoch
        beta = kl_beta(epoch, cfg.kl_warmup_epochs)
        seed = cfg.seed * 100_003 + epoch
        torch.manual_seed(seed)  # reparameterisation noise of this epoch
        gen = torch.Generator(device=self.device).manual_seed(seed)
        self.model.train()
        sums = torch.zeros(3, device=self.device)
        n_batches = math.ceil(images.shape[0] / cfg.batch_size)
        start = time.perf_counter()
        batches = (device_batches(images, cfg.batch_size, gen, train=True) if self.dist is None else
                   shard_batches(images, cfg.batch_size, gen, self.dist.rank, self.dist.world_size))
        bar = tqdm(batches, total=n_batches,
                   desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress, leave=False)
        total_steps = cfg.epochs * n_batches
        for i, x in enumerate(bar):
            lr = cfg.lr_at(self.step, total_steps)
            for group in self.optimizer.param_groups:
                group["lr"] = lr * group["lr_scale"]
            parts = self.losses(x, beta) if self.dist is None else self.shard_losses(x, beta)
            self.optimizer.zero_grad(set_to_none=True)
            parts["loss"].backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.optimizer.step()
            if self.ema is not None:
                self.ema.update_parameters(self.model)
            self.step += 1
            sums += torch.stack([parts["loss"].detach(), parts["recon"].detach(), parts["kl"].detach()])
            if self.step % cfg.log_every == 0 or i == n_batches - 1:
                # Reading the loss syncs the GPU, so it is checked here rather than every step.
                loss, recon, kl = (self._across_ranks(sums) / (i + 1)).tolist()
                self._check_finite(loss, "training loss")
                self.history["steps"].append({"step": self.step, "epoch": epoch + (i + 1) / n_batches,
                                              "loss": loss, "recon": recon, "kl": kl, "beta": beta, "lr": lr})
                if not progress:
                    log(f"epoch {epoch + 1} step {self.step}: loss {loss:.1f} recon {recon:.1f} kl {kl:.1f}")
        seconds = time.perf_counter() - start
        loss, recon, kl = (self._across_ranks(sums) / n_batches).tolist()
        row = {"epoch": epoch + 1, "beta": beta, "train_loss": loss, "train_recon": recon, "train_kl": kl,
               "seconds": seconds, "images_per_s": images.shape[0] / seconds}
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
            f"the {what} became {value} in epoch {self.epoch + 1} (step {self.step}); {kept}: rerun with a lower "
            f"learning rate (now {lr:.2g}) or a tighter gradient clip (now {clip:g}), e.g. {how}."
        )

    # ---- checkpoints -------------------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "kind": "vae",
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "model_config": config_to_dict(self.model_cfg),
            "train_config": config_to_dict(self.cfg),
            "epoch": self.epoch,
            "step": self.step,
            "best_val": self.best_val,
            "best_epoch": self.best_epoch,
            "best_model": self.best_model,
            "bf16": self.bf16,
            "history": self.history,
            # Under DDP the CUDA states are left out: reading every GPU's would open a CUDA context of each rank on
            # every GPU, and every epoch reseeds anyway (they are kept for single-process runs as before).
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and self.dist is None
                    else []},
        }

    def load_state(self, state: dict, path) -> None:
        check_resume_config(path, state, self.model_cfg, self.cfg)
        self.model.load_state_dict(strip_compile_prefix(state["model"]))
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.step, self.best_val = state["epoch"], state["step"], state["best_val"]
        self.best_model, self.best_epoch = state.get("best_model"), state.get("best_epoch", 0)
        self.history = state["history"]
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"]["cuda"] and torch.cuda.is_available() and self.dist is None:
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])

    def _adopt_lowered(self, saved: dict, log: Callable[[str], None]) -> None:
        """Resume at a lower lr / grad_clip if asked (recorded in history["changes"]); never at a higher one."""
        changes = {}
        for name in LOWERABLE_ON_RESUME:
            old, new = saved[name], getattr(self.cfg, name)
            if new > old:
                log(f"note: this run continues with {name} {old:g} from its checkpoint, not {new:g}: raising it "
                    "mid-run would be another experiment (use a new RUN_DIR for that)")
                self.cfg = override(self.cfg, **{name: old})
            elif new < old:
                log(f"resuming with {name} {new:g} instead of {old:g} (recorded in the training history)")
                changes[name] = [old, new]
        if changes:
            self.history.setdefault("changes", []).append({"after_epoch": self.epoch, **changes})
        for group in self.optimizer.param_groups:  # load_state_dict restored the checkpoint's lr
            group["lr"] = self.cfg.lr * group["lr_scale"]

    def resume(self, checkpoint_dir: Path, log: Callable[[str], None] = print) -> bool:
        """Load checkpoint_dir/last.pt if present, config checked; cheap, so callers run it before loading data."""
        last = Path(checkpoint_dir) / "last.pt"
        if self.resumed or not last.exists():
            return self.resumed
        state = load_checkpoint(last, map_location=self.device, kind="vae")
        self.load_state(state, last)
        self._adopt_lowered(state["train_config"], log)
        self.resumed = True
        log(f"resuming from {last} after epoch {self.epoch}")
        if state.get("bf16", self.bf16) != self.bf16:
            # Allowed (the weights are the same kind), but the exact-resume promise holds per precision.
            log(f"note: {last} was trained {'with' if state['bf16'] else 'without'} bf16 autocast and this "
                f"device continues {'with' if self.bf16 else 'without'} it, so the result will differ slightly "
                "from an uninterrupted run.")
        return True

    def fit(self, train_images: torch.Tensor, val_images: torch.Tensor, checkpoint_dir, progress: bool = True,
            log: Callable[[str], None] = print, on_epoch: Callable[[dict], None] | None = None) -> dict:
        """Train until `cfg.epochs` completed epochs, resuming from checkpoint_dir/last.pt if present."""
        self.checkpoint_dir = checkpoint_dir = Path(checkpoint_dir)
        last, best = checkpoint_dir / "last.pt", checkpoint_dir / "best.pt"
        if not self.is_main:  # rank 0 alone logs and writes; the other ranks compute the same numbers
            progress, log, on_epoch = False, distributed.quiet, None
        self.resume(checkpoint_dir, log)
        train_images, val_images = train_images.to(self.device), val_images.to(self.device)
        while self.epoch < self.cfg.epochs:
            row = self.train_epoch(train_images, progress, log)
            row.update(self.evaluate(val_images))
            # A last step can turn the weights NaN after a finite training loss: never checkpoint such an epoch.
            self._check_finite(row["val_loss"], "validation loss")
            self.epoch += 1
            self.history["epochs"].append(row)
            if row["val_loss"] < self.best_val:
                self.best_val, self.best_epoch = row["val_loss"], self.epoch
                self.best_model = {k: v.detach().to("cpu", copy=True) for k, v in self.eval_model.state_dict().items()}
                if self.is_main:
                    save_checkpoint(best_state(self.state()), best)
            if self.is_main:
                save_checkpoint(self.state(), last)  # after best.pt: a crash in between only repeats the epoch
            if self.dist is not None:
                # No rank starts the next epoch before last.pt holds this one, so a kill at any moment sends every
                # rank back to the same file.
                self.dist.barrier()
            log(f"epoch {self.epoch}/{self.cfg.epochs}: train {row['train_loss']:.1f} val {row['val_loss']:.1f} "
                f"(recon {row['val_recon']:.1f}, kl {row['val_kl']:.1f}) {row['images_per_s']:.0f} img/s")
            if on_epoch is not None:
                on_epoch(self.history)
        if self.epoch and self.is_main:
            ensure_best(checkpoint_dir, log)  # a finished run with a damaged best.pt heals here, not in a dead end
        return self.history


def check_resume_config(path, state: dict, model_cfg: ModelConfig, train_cfg: TrainConfig) -> None:
    """CheckpointError naming each field where last.pt's config differs in a way a resume may not change."""
    check_config(path, state["model_config"], config_to_dict(model_cfg), "model")
    free = RESUMABLE_CHANGES | set(LOWERABLE_ON_RESUME)
    saved_train = {k: v for k, v in state["train_config"].items() if k not in free}
    wanted = {k: v for k, v in config_to_dict(train_cfg).items() if k not in free}
    check_config(path, saved_train, wanted, "training")


def best_state(state: dict) -> dict:
    """best.pt's content from a last.pt state: its best evaluation weights (the EMA where it is on) as `model`
    (falls back to the final weights of a last.pt written before best weights were kept there)."""
    out = {k: v for k, v in state.items() if k != "best_model"}
    if state.get("best_model") is not None:
        out["model"], out["ema"] = state["best_model"], None
    return out


def ensure_best(checkpoint_dir: Path, log: Callable[[str], None] = print) -> dict:
    """best.pt's state; a missing or damaged best.pt is rebuilt from last.pt (with a notice) instead of failing."""
    best, last = Path(checkpoint_dir) / "best.pt", Path(checkpoint_dir) / "last.pt"
    try:
        return load_checkpoint(best, kind="vae")
    except CheckpointError as e:
        if not last.is_file():
            raise
        problem = str(e)
    state = load_checkpoint(last, kind="vae")
    source = ("the best weights kept in last.pt" if state.get("best_model") is not None
              else "last.pt's final weights (this last.pt predates kept best weights)")
    rebuilt = best_state(state)
    save_checkpoint(rebuilt, best)
    log(f"note: rebuilt {best} from {source}, because {problem}")
    return rebuilt


def checkpoint_bytes(model_cfg: ModelConfig) -> int:
    """About the size of last.pt: weights, best weights and Adam's two moments, 4 bytes per number each."""
    with torch.device("meta"):  # counts parameters without allocating them
        n = count_parameters(VAE(model_cfg))
    return 16 * n + 2**20


def prepare_run_dir(run_dir: Path, model_cfg: ModelConfig, log: Callable[[str], None] = print) -> None:
    """Before training starts (with the run lock held): clear temps of killed writes, and make sure the run's
    folders are writable and the disk holds two checkpoints (last.pt and its temp copy while it is replaced)."""
    remove_stale_temps(run_dir, log)
    check_writable([run_dir / "checkpoints", run_dir / "metrics", run_dir / "figures"],
                   need_bytes=2 * checkpoint_bytes(model_cfg))


def train_vae(ctx, progress: bool | None = None, log: Callable[[str], None] = print) -> dict:
    """Train (or resume, or just load the history of) the VAE of a run; writes metrics/train_history.json."""
    from .runlock import run_lock

    # Under torchrun: join the job, on this rank's device; rank 0 alone takes the run lock (for the whole job) and
    # prepares the folder, the other ranks write nothing.
    group = distributed.init_from_env(ctx.device, ctx.profile.train.batch_size)
    main = group is None or group.is_main
    if group is not None:
        ctx.device = group.device
    if not main:
        ctx.progress, log = False, distributed.quiet
    lock = run_lock(ctx.run_dir, "VAE training (python -m vaelib train or notebook 01)", log) if main else nullcontext()
    with distributed.closing(group), lock:
        if main:
            prepare_run_dir(ctx.run_dir, ctx.profile.model, log)
        # Built before the data loads: a missing VGG16 file or a checkpoint of another config fails at once.
        trainer = Trainer(ctx.profile.model, ctx.profile.train, ctx.device, dist=group)
        trainer.rerun_command = ctx.train_command()
        trainer.resume(ctx.checkpoints, log)  # a checkpoint of another config fails here, before the data loads
        return _train_loaded(ctx, trainer, ctx.progress if progress is None else progress, log)


def _train_loaded(ctx, trainer: Trainer, progress: bool, log: Callable[[str], None]) -> dict:
    with distributed.main_first(trainer.dist):  # rank 0 generates or caches the data set; the others then read it
        data = ctx.load_data()
    tcfg = trainer.cfg
    train_u8 = images_tensor(data, data.split("train")[:tcfg.train_limit])
    val_u8 = images_tensor(data, data.split("val")[:tcfg.val_limit])
    history = trainer.fit(train_u8, val_u8, ctx.checkpoints, progress, log,
                          on_epoch=lambda h: ctx.save_json("train_history", h))
    if not trainer.is_main:
        return history
    ctx.save_json("train_history", history)
    ctx.save_json("vae", {
        "profile": ctx.profile.name,
        "loss": describe_loss(ctx.profile.model, tcfg),
        "validation_loss": describe_validation_loss(ctx.profile.model, tcfg),
        "parameters": count_parameters(trainer.model),
        "model_config": config_to_dict(ctx.profile.model),
        "train_config": config_to_dict(trainer.cfg),
        "train_images": int(train_u8.shape[0]),
        "val_images": int(val_u8.shape[0]),
        "best_val_loss": trainer.best_val,
        "device": str(ctx.device),
        "bf16_autocast": trainer.bf16,
        "channels_last": trainer.channels_last,
        "images_per_s": history["epochs"][-1]["images_per_s"] if history["epochs"] else None,
    })
    return history


def load_vae(ctx, which: str = "best") -> VAE:
    """The run's trained VAE in eval mode on ctx.device, built from the config stored in its checkpoint."""
    folder = ctx.run_dir / "checkpoints"
    if which == "best" and (folder / "last.pt").is_file():
        state = ensure_best(folder)
    else:
        state = load_checkpoint(ctx.require(folder / f"{which}.pt", "01_train_vae"), kind="vae")
    model = VAE(model_config_from_dict(state["model_config"]))
    model.load_state_dict(evaluation_weights(state))
    return model.to(ctx.device).eval()


def evaluation_weights(state: dict) -> dict:
    """The state dict a checkpoint is evaluated with: its EMA weights when it has them, else the trained ones."""
    if state.get("ema") is None:
        return strip_compile_prefix(state["model"])
    return {k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")}


def train_from_cli(run_dir: str, profile: str, data: str | None, seed: int, epochs: int | None,
                   batch_size: int | None = None, device: str = "auto", progress: bool = True,
                   celeba_root: str = "", lr: float | None = None, grad_clip: float | None = None,
                   vgg_weights: str | None = None) -> dict:
    from .run import setup_run

    overrides = {k: v for k, v in {"epochs": epochs, "batch_size": batch_size, "lr": lr, "grad_clip": grad_clip,
                                   "vgg_weights": vgg_weights}.items() if v is not None}
    ctx = setup_run(run_dir, profile, data, seed, device, celeba_root, progress=progress, **overrides)
    return train_vae(ctx)
