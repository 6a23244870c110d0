"""Checkpoints that survive a kill -9: written atomically, loaded safely, checked against the config.

A checkpoint is a plain dict of tensors, numbers, strings and lists, so `torch.load(weights_only=True)` can
read it without unpickling arbitrary objects.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .atomic import atomic_write
from .errors import CheckpointError

# Bumped whenever saved weights stop fitting the code (2: squeeze-excitation is torchvision's block).
FORMAT_VERSION = 2
# What the readers of each kind index without a default: a dict lacking one is refused in one sentence.
REQUIRED_FIELDS = {
    "vae": ("model", "optimizer", "model_config", "train_config", "epoch", "step", "best_val", "history", "rng"),
    "classifier": ("model", "config", "attr_names"),
}
# Tensors that must be finite: a NaN model would be "kept" as good and then poison every later notebook.
WEIGHT_FIELDS = ("model", "best_model")


def save_checkpoint(state: dict, path: Path) -> None:
    """Written atomically (`vaelib.atomic`): a kill -9 mid-save leaves the previous checkpoint intact."""
    atomic_write(path, lambda f: torch.save({**state, "format_version": FORMAT_VERSION}, f))


def load_checkpoint(path: Path, map_location="cpu", kind: str | None = None) -> dict:
    """Load a checkpoint; a truncated, foreign or wrong-kind file is a CheckpointError with one sentence."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file; move it out of the way and rerun.")
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises RuntimeError/EOFError/UnpicklingError for damaged files
        raise CheckpointError(
            f"checkpoint {path} is truncated or not a vaelib checkpoint ({type(e).__name__}); "
            "delete it and rerun, or restore it from a copy."
        ) from None
    if not isinstance(state, dict) or "format_version" not in state:
        raise CheckpointError(f"{path} is not a vaelib checkpoint.")
    if state["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written by another vaelib version (checkpoint format {state['format_version']}, this code "
            f"reads {FORMAT_VERSION}): delete it, or use a new RUN_DIR, and train again."
        )
    if kind is not None and state.get("kind") != kind:
        raise CheckpointError(f"{path} holds a {state.get('kind')!r} checkpoint, not a {kind!r} one.")
    missing = [k for k in REQUIRED_FIELDS.get(state.get("kind"), ()) if k not in state]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}, so it was not written by vaelib's trainer; "
                              "delete it (or restore it from a copy) and rerun.")
    for field in WEIGHT_FIELDS:
        bad = [name for name, t in state.get(field, {}).items()
               if torch.is_tensor(t) and t.is_floating_point() and not torch.isfinite(t).all()]
        if bad:
            raise CheckpointError(f"{path} holds NaN or infinite weights ({field} {bad[0]}), written by a diverged "
                                  "run; delete it (or restore it from a copy) and rerun with a lower learning rate.")
    return state


def check_config(path: Path, saved: dict, expected: dict, what: str = "model") -> None:
    """Name every field where a checkpoint's config differs from the one asked for."""
    diff = {k: (saved.get(k), v) for k, v in expected.items() if _norm(saved.get(k)) != _norm(v)}
    if diff:
        detail = ", ".join(f"{k}: checkpoint {a!r} vs requested {b!r}" for k, (a, b) in sorted(diff.items()))
        raise CheckpointError(
            f"{path} was trained with another {what} config ({detail}); use a new RUN_DIR or the matching profile."
        )


def strip_compile_prefix(state_dict: dict) -> dict:
    """torch.compile wraps modules as `_orig_mod.`; strip it so checkpoints load compiled or not."""
    return {k.replace("_orig_mod.", ""): v for k, v in state_dict.items()}


def _norm(value):
    return list(value) if isinstance(value, tuple) else value
