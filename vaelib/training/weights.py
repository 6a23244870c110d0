"""Which weights of a VAE run are evaluated: the exponential moving average where it is on, and the best
epoch's, kept in last.pt so that best.pt can always be rebuilt from it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..checkpoint import load_checkpoint, save_checkpoint, strip_compile_prefix
from ..errors import CheckpointError


def moving_average(model: nn.Module, decay: float) -> AveragedModel | None:
    """torch's own EMA of `model`'s weights (buffers are copied, GroupNorm has none that learn); None when
    decay is 0. A short CPU run gains most from it."""
    if decay <= 0:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def cpu_copy(model: nn.Module) -> dict:
    """The state dict of `model` copied to the CPU: the best epoch's weights, kept while training goes on."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def evaluation_weights(state: dict) -> dict:
    """The state dict a checkpoint is evaluated with: its EMA weights when it has them, else the trained ones."""
    if state.get("ema") is None:
        return strip_compile_prefix(state["model"])
    return {k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")}


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
