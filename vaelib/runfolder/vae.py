"""The VAE of a run folder: train it into RUN_DIR/checkpoints (notebook 01, `python -m vaelib train`), load it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch

from ..atomic import check_writable, remove_stale_temps
from ..checkpoint import load_checkpoint
from ..config import config_to_dict, describe_loss, describe_validation_loss, model_config_from_dict
from ..data.pixels import images_tensor
from ..models.vae import VAE, ModelConfig, count_parameters
from ..run import RunContext, setup_run
from ..runlock import run_lock
from ..training import distributed
from ..training.vae import Trainer
from ..training.weights import ensure_best, evaluation_weights


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


def train_vae(ctx: RunContext, progress: bool | None = None, log: Callable[[str], None] = print) -> dict:
    """Train (or resume, or just load the history of) the VAE of a run; writes metrics/train_history.json."""
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


def _train_loaded(ctx: RunContext, trainer: Trainer, progress: bool, log: Callable[[str], None]) -> dict:
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


def load_vae(ctx: RunContext, which: str = "best") -> VAE:
    """The run's trained VAE in eval mode on ctx.device, built from the config stored in its checkpoint."""
    folder = ctx.run_dir / "checkpoints"
    if which == "best" and (folder / "last.pt").is_file():
        state = ensure_best(folder)
    else:
        state = load_checkpoint(ctx.require(folder / f"{which}.pt", "01_train_vae"), kind="vae")
    model = VAE(model_config_from_dict(state["model_config"]))
    model.load_state_dict(evaluation_weights(state))
    return model.to(ctx.device).eval()


def train_from_cli(run_dir: str, profile: str, data: str | None, seed: int, epochs: int | None,
                   batch_size: int | None = None, device: str = "auto", progress: bool = True,
                   celeba_root: str = "", lr: float | None = None, grad_clip: float | None = None,
                   vgg_weights: str | None = None) -> dict:
    overrides = {k: v for k, v in {"epochs": epochs, "batch_size": batch_size, "lr": lr, "grad_clip": grad_clip,
                                   "vgg_weights": vgg_weights}.items() if v is not None}
    ctx = setup_run(run_dir, profile, data, seed, device, celeba_root, progress=progress, **overrides)
    return train_vae(ctx)
