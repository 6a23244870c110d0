"""Training the attribute classifiers of notebook 02 on the shared `Loop`, and calibrating their thresholds.

Two networks are trained: the *classifier*, which label guidance (04) optimises against, and an
independent *judge* (another seed and the other, disjoint half of the training split) that only scores
edits. Scoring an edit with the network it was optimised against would reward adversarial pixels.

Each network's decision threshold per attribute is calibrated on the validation split (the threshold that
maximises balanced accuracy) and stored in its checkpoint: training weights the rare class up (pos_weight),
which moves the probabilities of rare attributes upwards, so 0.5 is not where the network separates best.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_curve

from ..data.batches import batch_indices, random_hflip
from ..data.pixels import to_float
from ..errors import ConfigError
from ..models.classifier import AttributeClassifier, ClassifierConfig
from .loop import Loop


@dataclass(frozen=True)
class ClassifierTraining:
    epochs: int = 3
    batch_size: int = 32  # small batches run faster per image on a small CPU (cache-friendly)
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


def _labelled_batches(images: torch.Tensor, labels: torch.Tensor, batch_size: int, gen: torch.Generator,
                      device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled, randomly flipped float images with their labels, drawn on the CPU and moved to `device`."""
    for idx in batch_indices(len(images), batch_size, gen, shuffle=True):
        x = random_hflip(to_float(images[idx]), gen).to(device, non_blocking=True)
        yield x, labels[idx].to(device, non_blocking=True)


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
    n_batches = -(-len(images) // training.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=training.lr, total_steps=training.epochs * n_batches,
                                                   pct_start=0.15)
    y_all = labels.float()
    rate = y_all.mean(0).clamp(1e-3, 1 - 1e-3)
    pos_weight = ((1 - rate) / rate).clamp(1 / training.pos_weight_max, training.pos_weight_max).to(device)
    loop = Loop(opt, after_step=[schedule.step])
    history: list[dict] = []

    def batch_loss(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[dict[str, torch.Tensor], float]:
        x, y = batch
        return {"loss": F.binary_cross_entropy_with_logits(model(x), y, pos_weight=pos_weight)}, len(x)

    def run_epoch() -> dict:
        model.train()
        means, seconds = loop.run_epoch(_labelled_batches(images, y_all, training.batch_size, gen, device),
                                        batch_loss, n_batches)
        return {"epoch": loop.epoch + 1, "train_loss": means["loss"], "images_per_s": len(images) / seconds}

    def end_epoch(row: dict) -> None:
        history.append(row)
        log(f"epoch {row['epoch']}/{training.epochs}: train loss (weighted BCE) {row['train_loss']:.4f}, "
            f"{row['images_per_s']:.0f} img/s")

    loop.fit(training.epochs, run_epoch, end_epoch)
    return model.eval(), history


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
