"""Train, score, save and load the attribute classifiers of notebook 02.

Two networks are trained: the *classifier*, which label guidance (04) optimises against, and an
independent *judge* (another seed and the other, disjoint half of the training split) that only scores
edits. Scoring an edit with the network it was optimised against would reward adversarial pixels.

Each network's decision threshold per attribute is calibrated on the validation split (the threshold that
maximises balanced accuracy) and stored in its checkpoint: training weights the rare class up (pos_weight),
which moves the probabilities of rare attributes upwards, so 0.5 is not where the network separates best.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_curve

from ..checkpoint import load_checkpoint, save_checkpoint
from ..data.batches import batch_indices, map_batches, random_hflip
from ..data.pixels import images_tensor, to_float
from ..errors import CheckpointError, ConfigError
from ..models.classifier import AttributeClassifier, ClassifierConfig

ROLES = ("classifier", "judge")  # checkpoint names in ctx.checkpoints, in this order
PRODUCER = "02_classifier"


@dataclass(frozen=True)
class ClassifierTraining:
    epochs: int = 3
    batch_size: int = 32  # small batches run faster per image on a 2-core CPU (cache-friendly)
    lr: float = 3e-3  # peak of the one-cycle schedule
    train_images: int = 0  # 0 = every image given to `train_classifier`
    # Positive-class weight of each attribute = negatives / positives in the training labels, kept within
    # [1 / max, max]; 1 = plain BCE. Without it, rare attributes (Eyeglasses ~7 %, Wearing_Hat ~5 %) are never
    # predicted after a few epochs, and the judge could not see the very edits it has to score.
    pos_weight_max: float = 10.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.train_images < 0 or self.pos_weight_max < 1:
            raise ConfigError("classifier training needs epochs, batch_size >= 1, lr > 0, train_images >= 0 and "
                              f"pos_weight_max >= 1, not {self}.")


def disjoint_halves(indices: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded shuffle of `indices` cut in two: the classifier's and the judge's training images."""
    shuffled = np.random.default_rng(seed).permutation(indices)
    half = len(shuffled) // 2
    return np.sort(shuffled[:half]), np.sort(shuffled[half:])


def train_classifier(images: torch.Tensor, labels: torch.Tensor, cfg: ClassifierConfig,
                     training: ClassifierTraining, device: torch.device,
                     log: Callable[[str], None] = print) -> tuple[AttributeClassifier, list[dict]]:
    """Fit a classifier from scratch with (class-weighted) BCE-with-logits and Adam on uint8 images
    (N, 3, H, W) and 0/1 labels (N, A).

    Returns the model in eval mode and one history row per epoch.
    """
    if training.train_images:
        images, labels = images[:training.train_images], labels[:training.train_images]
    with torch.random.fork_rng(devices=[]):  # seeded initial weights without resetting the caller's RNG
        torch.manual_seed(training.seed)
        model = AttributeClassifier(cfg).to(device)
    gen = torch.Generator().manual_seed(training.seed)  # order and flips
    opt = torch.optim.Adam(model.parameters(), lr=training.lr)
    # Warm-up, then cosine decay to ~0: a run of only a few epochs still ends in a settled model.
    steps = training.epochs * -(-len(images) // training.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=training.lr, total_steps=steps, pct_start=0.15)
    y_all = labels.float()
    rate = y_all.mean(0).clamp(1e-3, 1 - 1e-3)
    pos_weight = ((1 - rate) / rate).clamp(1 / training.pos_weight_max, training.pos_weight_max).to(device)
    history = []
    for epoch in range(1, training.epochs + 1):
        model.train()
        start, total, seen = time.perf_counter(), 0.0, 0
        for idx in batch_indices(len(images), training.batch_size, gen, shuffle=True):
            x = random_hflip(to_float(images[idx]), gen).to(device, non_blocking=True)
            y = y_all[idx].to(device, non_blocking=True)
            loss = F.binary_cross_entropy_with_logits(model(x), y, pos_weight=pos_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
            total += loss.item() * len(x)
            seen += len(x)
        row = {"epoch": epoch, "train_loss": total / seen, "images_per_s": seen / (time.perf_counter() - start)}
        history.append(row)
        log(f"epoch {epoch}/{training.epochs}: train loss (weighted BCE) {row['train_loss']:.4f}, "
            f"{row['images_per_s']:.0f} img/s")
    return model.eval(), history


@torch.no_grad()
def predict(model: AttributeClassifier, images: torch.Tensor, batch_size: int = 256,
            with_features: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Probabilities (N, 40) on the CPU for uint8 or [0, 1] float images; optionally penultimate features."""
    def probabilities_and_features(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = model.features(x)
        return torch.sigmoid(model.net.fc(h)), h if with_features else h[:, :0]

    probs, feats = map_batches(probabilities_and_features, images, batch_size, next(model.parameters()).device)
    return probs, feats if with_features else None


def calibrate_thresholds(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per attribute (columns of probs, labels: N x A), the probability threshold that maximises balanced
    accuracy on these images: the ROC point of largest tpr - fpr (Youden's J; balanced accuracy =
    (1 + tpr - fpr) / 2). 0.5 where an attribute has a single class here, so nothing can be calibrated."""
    thresholds = np.full(probs.shape[1], 0.5)
    for j in range(probs.shape[1]):
        y = labels[:, j].astype(bool)
        if y.all() or not y.any():
            continue
        fpr, tpr, cut = roc_curve(y, probs[:, j])
        thresholds[j] = min(float(cut[int(np.argmax(tpr - fpr))]), 1.0)  # roc_curve's first cut is +inf
    return thresholds


def model_thresholds(state: dict) -> torch.Tensor:
    """The calibrated decision thresholds (A,) stored in a classifier checkpoint dict."""
    if "thresholds" not in state:
        raise CheckpointError("this classifier checkpoint has no calibrated thresholds (written by an older 02); "
                              "set RETRAIN = True in 02_classifier to train and calibrate it again.")
    return torch.as_tensor(state["thresholds"], dtype=torch.float32)


def attribute_metrics(probs: np.ndarray, labels: np.ndarray, train_labels: np.ndarray,
                      attr_names: tuple[str, ...], thresholds=0.5) -> dict[str, dict[str, float]]:
    """Per attribute: the decision threshold, accuracy, balanced accuracy (mean recall over the classes present
    in `labels`) and the majority-class baseline (the more frequent training label, predicted for every test
    image). `thresholds`: one number or one per attribute."""
    thresholds = np.broadcast_to(np.asarray(thresholds, dtype=float), (probs.shape[1],))
    pred = probs >= thresholds
    labels = labels.astype(bool)
    majority = train_labels.mean(axis=0) >= 0.5
    out = {}
    for j, name in enumerate(attr_names):
        y, p = labels[:, j], pred[:, j]
        recalls = [float((p[y == c] == c).mean()) for c in (False, True) if (y == c).any()]
        out[name] = {
            "threshold": float(thresholds[j]),
            "accuracy": float((p == y).mean()),
            "balanced_accuracy": float(np.mean(recalls)),
            "majority_baseline": float((y == majority[j]).mean()),
        }
    return out


def mean_metrics(per_attribute: dict[str, dict[str, float]], names=None) -> dict[str, float]:
    """Averages of each metric over `names` (default: every attribute), and the worst balanced accuracy.
    Thresholds are per attribute and not averaged."""
    rows = [per_attribute[n] for n in (names if names is not None else per_attribute)]
    if not rows:
        return {}
    out = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "threshold"}
    out["worst_balanced_accuracy"] = float(min(r["balanced_accuracy"] for r in rows))
    return out


def save_classifier(path, model: AttributeClassifier, training: ClassifierTraining, attr_names, metrics: dict,
                    role: str, thresholds: np.ndarray) -> dict:
    """Write the checkpoint (kind "classifier") with its calibrated thresholds; return the dict written."""
    state = {"kind": "classifier", "role": role, "model": model.state_dict(), "config": asdict(model.cfg),
             "training": asdict(training), "attr_names": list(attr_names), "metrics": metrics,
             "thresholds": [float(t) for t in thresholds]}
    save_checkpoint(state, path)
    return state


def load_classifier(ctx, role: str = "judge", expected: ClassifierConfig | None = None
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


def train_or_load(ctx, role: str, data, train_idx: np.ndarray, cfg: ClassifierConfig,
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


REPORT_COLUMNS = ("attribute", "rendered", "majority_baseline", "classifier_threshold", "classifier_accuracy",
                  "classifier_balanced", "judge_threshold", "judge_accuracy", "judge_balanced")
SUMMARY_COLUMNS = ("model", "attributes", "accuracy", "majority_baseline", "balanced_accuracy",
                   "worst_balanced_accuracy")


def classifier_report(data, models: dict[str, tuple[AttributeClassifier, np.ndarray, torch.Tensor]],
                      rendered: frozenset[str] | None) -> dict:
    """Test-split metrics of each {role: (model, its training indices, its calibrated thresholds)}: per
    attribute, means over all attributes and, on synthetic data, over the attributes the generator draws
    (labels = ground truth).

    Keys: "models" {role: {"per_attribute", "mean", "mean_rendered"}}, "attribute_table" (one row per
    attribute, see REPORT_COLUMNS), "summary" (SUMMARY_COLUMNS), "rendered", "test_images".
    """
    test = data.split("test")
    images, labels = images_tensor(data, test), data.attributes[test]
    names = tuple(data.attr_names)
    shown = [n for n in names if rendered is None or n in rendered]
    report: dict = {"models": {}, "rendered": None if rendered is None else shown, "test_images": len(test)}
    summary = []
    for role, (model, train_idx, thresholds) in models.items():
        per = attribute_metrics(predict(model, images)[0].numpy(), labels, data.attributes[train_idx], names,
                                thresholds.numpy())
        report["models"][role] = {"per_attribute": per, "mean": mean_metrics(per), "train_images": len(train_idx)}
        summary.append({"model": role, "attributes": f"all {len(names)}", **mean_metrics(per)})
        if rendered is not None:
            report["models"][role]["mean_rendered"] = mean_metrics(per, shown)
            summary.append({"model": role, "attributes": f"rendered {len(shown)}", **mean_metrics(per, shown)})
    report["summary"] = summary
    report["attribute_table"] = []
    for n in names:
        row = {"attribute": n, "rendered": None if rendered is None else n in rendered,
               "majority_baseline": report["models"][next(iter(models))]["per_attribute"][n]["majority_baseline"]}
        for role in models:
            m = report["models"][role]["per_attribute"][n]
            row[f"{role}_threshold"] = m["threshold"]
            row[f"{role}_accuracy"], row[f"{role}_balanced"] = m["accuracy"], m["balanced_accuracy"]
        report["attribute_table"].append(row)
    return report
