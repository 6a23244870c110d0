"""The attribute classifiers of a run folder: trained and calibrated by notebook 02 into RUN_DIR/checkpoints
(classifier.pt, judge.pt), loaded by 03-05, and the judge as the edit notebooks score with it."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from multiprocessing import get_context

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
    return train_or_load_all(ctx, data, {role: train_idx}, cfg, {role: training}, retrain, log)[role]


def train_or_load_all(ctx: RunContext, data, train_idx: dict[str, np.ndarray], cfg: ClassifierConfig,
                      training: dict[str, ClassifierTraining], retrain: bool = False,
                      log: Callable[[str], None] = print) -> dict[str, tuple[AttributeClassifier, dict]]:
    """`train_or_load` for each role of `train_idx` (same keys as `training`).

    On a CPU with at least 2 cores, networks still to train are trained side by side, one process each with
    an equal share of the cores: small networks keep one core busier than they keep two, so two width-8
    ResNet18s train ~1.3x faster together than one after the other (benchmarks/RESULTS.md).
    """
    done, todo = {}, []
    for role in train_idx:
        path = ctx.checkpoints / f"{role}.pt"
        if path.is_file() and not retrain:
            model, state = load_classifier(ctx, role, expected=cfg)
            model_thresholds(state)  # an uncalibrated (older) checkpoint is an error here, not in 03
            log(f"{role}: loaded {path} (set RETRAIN = True to train it again)")
            done[role] = model, state
        else:
            todo.append(role)
    jobs = [(images_tensor(data, train_idx[role]), torch.from_numpy(data.attributes[train_idx[role]]), cfg,
             training[role]) for role in todo]
    for role in todo:
        log(f"{role}: training on {len(train_idx[role])} images")
    start, cores = time.perf_counter(), os.cpu_count() or 1
    if len(todo) > 1 and ctx.device.type == "cpu" and cores >= 2:
        threads = max(1, cores // len(todo))
        with ProcessPoolExecutor(len(todo), mp_context=get_context("spawn")) as pool:  # spawn: safe beside torch
            results = list(pool.map(_train_on_cpu, jobs, [threads] * len(todo)))
        log(f"trained {' and '.join(todo)} side by side ({threads} thread(s) each) in "
            f"{time.perf_counter() - start:.0f} s")
    else:
        results = [_timed_training(job, ctx.device, log) for job in jobs]
    val = data.split("val")
    val_images = images_tensor(data, val) if todo else None  # read once for every network to calibrate
    for role, (model, history, seconds) in zip(todo, results, strict=True):
        log(f"{role}: {len(history)} epochs in {seconds:.0f} s, final train loss {history[-1]['train_loss']:.4f}")
        model = model.to(ctx.device).eval()
        thresholds = calibrate_thresholds(predict(model, val_images)[0].numpy(), data.attributes[val])
        n_train = len(train_idx[role])
        metrics = {"history": history, "train_images": min(n_train, training[role].train_images or n_train),
                   "calibration_images": len(val), "train_seconds": seconds}
        done[role] = model, save_classifier(ctx.checkpoints / f"{role}.pt", model, training[role], data.attr_names,
                                            metrics, role, thresholds)
    return {role: done[role] for role in train_idx}


def _timed_training(job: tuple, device: torch.device, log: Callable[[str], None]
                    ) -> tuple[AttributeClassifier, list[dict], float]:
    start = time.perf_counter()
    return *train_classifier(*job, device, log), time.perf_counter() - start


def _train_on_cpu(job: tuple, threads: int) -> tuple[AttributeClassifier, list[dict], float]:
    """`_timed_training` in a worker process with `threads` CPU threads; its per-epoch log lines are dropped
    (the parent logs a summary)."""
    torch.set_num_threads(threads)
    return _timed_training(job, torch.device("cpu"), log=lambda _: None)
