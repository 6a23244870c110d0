"""Exact resume of a VAE run: what last.pt holds, what a resume may change, and loading it back.

Resume is exact because every epoch reseeds its own randomness (data order, flips, reparameterisation noise)
from (seed, epoch): a run restarted from the end-of-epoch checkpoint replays the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from ..checkpoint import check_config, load_checkpoint, strip_compile_prefix
from ..config import TrainConfig, config_to_dict, override
from ..models.vae import ModelConfig

# Train-config fields that may change between a run and its resume without changing the numbers.
RESUMABLE_CHANGES = {"epochs", "log_every", "compile", "vgg_weights"}
# Fields a resume may lower: the way out of a diverged run. A request above the checkpoint's value (the profile's
# default, say, after `train --lr` recovered a run) continues at the checkpoint's value with a notice: raising them
# mid-run is another experiment, and refusing would leave `run`, which has no --lr, no way to finish the folder.
LOWERABLE_ON_RESUME = ("lr", "grad_clip")


def check_resume_config(path, state: dict, model_cfg: ModelConfig, train_cfg: TrainConfig) -> None:
    """CheckpointError naming each field where last.pt's config differs in a way a resume may not change."""
    check_config(path, state["model_config"], config_to_dict(model_cfg), "model")
    free = RESUMABLE_CHANGES | set(LOWERABLE_ON_RESUME)
    saved_train = {k: v for k, v in state["train_config"].items() if k not in free}
    wanted = {k: v for k, v in config_to_dict(train_cfg).items() if k not in free}
    check_config(path, saved_train, wanted, "training")


class Resumable:
    """The checkpoint half of `vae.Trainer`: its state as a dict, and a resume from last.pt."""

    def state(self) -> dict:
        return {
            "kind": "vae",
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "model_config": config_to_dict(self.model_cfg),
            "train_config": config_to_dict(self.cfg),
            "epoch": self.loop.epoch,
            "step": self.loop.step,
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
        self.loop.epoch, self.loop.step, self.best_val = state["epoch"], state["step"], state["best_val"]
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
            self.history.setdefault("changes", []).append({"after_epoch": self.loop.epoch, **changes})
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
        log(f"resuming from {last} after epoch {self.loop.epoch}")
        if state.get("bf16", self.bf16) != self.bf16:
            # Allowed (the weights are the same kind), but the exact-resume promise holds per precision.
            log(f"note: {last} was trained {'with' if state['bf16'] else 'without'} bf16 autocast and this "
                f"device continues {'with' if self.bf16 else 'without'} it, so the result will differ slightly "
                "from an uninterrupted run.")
        return True
