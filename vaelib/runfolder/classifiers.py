"""The attribute classifiers of a run folder: trained and calibrated by notebook 02 into RUN_DIR/checkpoints
(classifier.pt, judge.pt), loaded by 03-05, and the judge as the edit notebooks score with it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict

import numpy as np
import torch

from ..checkpoint import load_checkpoint, save_checkpoint
from ..data.pixels import images_tensor
from ..editing.evaluate import Judge
from ..errors import CheckpointError, ConfigError
from ..models.classifier import AttributeClassifier, ClassifierConfig, predict
from ..run import RunContext
from ..training.classifier import ClassifierTraining, calibrate_thresholds, train_classifier

ROLES = ("classifier", "judge")  # checkpoint names in ctx.checkpoints, in this order
PRODUCER = "02_classifier"


def save_classifier(path, model: AttributeClassifier, training: ClassifierTraining, attr_names, metrics: dict,
                    role: str, thresholds: np.ndarray) -> dict:
    """Write the checkpoint (kind "classifier") with its calibrated thresholds; return the dict written."""
    state = {"kind": "classifier", "role": role, "model": model.state_dict(), "config": asdict(model.cfg),
             "training": asdict(training), "attr_names": list(attr_names), "metrics": metrics,
             "thresholds": [float(t) for t in thresholds]}
    save_checkpoint(state, path)
    return state


def model_thresholds(state: dict) -> torch.Tensor:
    """The calibrated decision thresholds (A,) stored in a classifier checkpoint dict."""
    if "thresholds" not in state:
        raise CheckpointError("this classifier checkpoint has no calibrated thresholds (written by an older 02); "
                              "set RETRAIN = True in 02_classifier to train and calibrate it again.")
    return torch.as_tensor(state["thresholds"], dtype=torch.float32)


def load_classifier(ctx: RunContext, role: str = "judge", expected: ClassifierConfig | None = None
                    ) -> tuple[AttributeClassifier, dict]:
    """A classifier saved by 02 in eval mode on ctx.device, and its checkpoint dict (training, metrics ...).

    With `expected`, a checkpoint of another architecture is a CheckpointError instead of a silent reuse.
    """
    if role not in ROLES:
        raise ConfigError(f"classifier role must be one of {ROLES}, not {role!r}.")
    path = ctx.require(ctx.checkpoints / f"{role}.pt", PRODUCER)
    state = load_checkpoint(path, map_location=ctx.device, kind="classifier")
    if expected is not None and state["config"] != asdict(expected):
        raise CheckpointError(f"{path} holds a classifier with config {state['config']}, not {asdict(expected)}; "
                              "set RETRAIN = True in 02_classifier to replace it, or use the same WIDTH.")
    model = AttributeClassifier(ClassifierConfig(**state["config"]))
    model.load_state_dict(state["model"])
    return model.to(ctx.device).eval(), state


def load_judge(ctx: RunContext, data) -> Judge:
    """The judge of 02 as edits are scored with it: network, calibrated thresholds, its test-split quality per
    attribute (02's metrics/classifier.json) and the attributes `data` renders."""
    model, state = load_classifier(ctx, "judge")
    quality = ctx.load_json("classifier", PRODUCER)["models"]["judge"]["per_attribute"]
    return Judge(model, model_thresholds(state), quality, data.rendered_attributes)


def train_or_load(ctx: RunContext, role: str, data, train_idx: np.ndarray, cfg: ClassifierConfig,
                  training: ClassifierTraining, retrain: bool = False, log: Callable[[str], None] = print
                  ) -> tuple[AttributeClassifier, dict]:
    """Load ctx.checkpoints/<role>.pt if it exists (and matches `cfg`), else train on `train_idx`, calibrate
    its thresholds on the validation split and save it.

    The checkpoint's "metrics" hold the training history; test metrics are computed by the caller.
    """
    path = ctx.checkpoints / f"{role}.pt"
    if path.is_file() and not retrain:
        model, state = load_classifier(ctx, role, expected=cfg)
        model_thresholds(state)  # an uncalibrated (older) checkpoint is an error here, not in 03
        log(f"{role}: loaded {path} (set RETRAIN = True to train it again)")
        return model, state
    log(f"{role}: training on {len(train_idx)} images")
    start = time.perf_counter()
    model, history = train_classifier(images_tensor(data, train_idx), torch.from_numpy(data.attributes[train_idx]),
                                      cfg, training, ctx.device, log)
    val = data.split("val")
    thresholds = calibrate_thresholds(predict(model, images_tensor(data, val))[0].numpy(), data.attributes[val])
    metrics = {"history": history, "train_images": min(len(train_idx), training.train_images or len(train_idx)),
               "calibration_images": len(val), "train_seconds": time.perf_counter() - start}
    return model, save_classifier(path, model, training, data.attr_names, metrics, role, thresholds)
