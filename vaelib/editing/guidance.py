"""Label guidance: move a latent until the classifier sees the target attribute in its decoded image.

For each item b (one image, one attribute, one target 0/1, one lambda) minimise
    BCE(classifier(decode(z_b))[attr_b], target_b) + lambda_b * ||z_b - z0_b||^2
over z_b with Adam. All items share one (B, D) tensor: GroupNorm in the VAE and eval-mode BatchNorm in the
classifier act per image, and the loss is a sum over items, so the batch is B independent optimisations
done at the cost of one large forward/backward pass per step.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..models.classifier import AttributeClassifier, predict
from ..models.vae import VAE
from .evaluate import CONTROL, Judge, edit_rows, random_directions, score_edits, sees
from .latents import decode


@dataclass
class GuidanceResult:
    z: torch.Tensor  # (B, D) final latents, on the CPU
    bce: torch.Tensor  # (B,) BCE of the target at the end
    bce_start: torch.Tensor  # (B,) BCE of the target at z0
    distance: torch.Tensor  # (B,) ||z - z0||
    loss_history: list[float]  # mean total loss per step


@dataclass
class GuidanceBatch:
    """Which image, attribute column, target and lambda each row of the optimisation tensor stands for."""

    image: torch.Tensor  # (B,) index into the z0 of `guidance_batch`
    attr: torch.Tensor  # (B,) attribute column
    target: torch.Tensor  # (B,) 0. or 1.
    lam: torch.Tensor  # (B,)

    def __len__(self) -> int:
        return len(self.image)


def guidance_batch(n_images: int, attrs, targets=(1.0, 0.0), lambdas=(0.1,)) -> GuidanceBatch:
    """Every (lambda, image, attribute, target) combination, in that row-major order.

    `targets` is a tuple of targets tried for every image and attribute (both directions: (1., 0.)) or a
    (n_images, len(attrs)) tensor of one target each (e.g. the opposite of what the judge sees now).
    """
    attrs = torch.as_tensor(list(attrs), dtype=torch.long)
    lam = torch.as_tensor(list(lambdas), dtype=torch.float32)
    if isinstance(targets, torch.Tensor):
        li, ii, ai = torch.meshgrid(torch.arange(len(lam)), torch.arange(n_images), torch.arange(len(attrs)),
                                    indexing="ij")
        li, ii, ai = li.reshape(-1), ii.reshape(-1), ai.reshape(-1)
        target = targets.float()[ii, ai]
    else:
        t = torch.as_tensor(list(targets), dtype=torch.float32)
        li, ii, ai, ti = (g.reshape(-1) for g in torch.meshgrid(
            torch.arange(len(lam)), torch.arange(n_images), torch.arange(len(attrs)), torch.arange(len(t)),
            indexing="ij"))
        target = t[ti]
    return GuidanceBatch(ii, attrs[ai], target, lam[li])


@contextmanager
def frozen(*models: nn.Module) -> Iterator[None]:
    """No parameter gradients while optimising the input: skips the weight-gradient work of backward."""
    params = [p for m in models for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)


def _target_bce(vae: VAE, classifier: AttributeClassifier, z: torch.Tensor, attr: torch.Tensor,
                target: torch.Tensor) -> torch.Tensor:
    logits = classifier(vae.decode(z)).gather(1, attr[:, None])[:, 0]
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none")


def label_guidance(vae: VAE, classifier: AttributeClassifier, z0: torch.Tensor, attr: torch.Tensor,
                   target: torch.Tensor, steps: int = 200, lr: float = 0.01, lam: float | torch.Tensor = 0.1
                   ) -> GuidanceResult:
    """Optimise every row of z0 (B, D) towards its target (B,) 0/1 on attribute column attr (B,).

    `lam` is one float or one value per row (a lambda sweep in a single batch). Both models must be in
    eval mode; their parameters are left untouched.
    """
    device = next(vae.parameters()).device
    z0 = z0.detach().to(device)
    attr = attr.to(device, torch.long)
    target = target.to(device, torch.float32)
    lam = torch.as_tensor(lam, dtype=torch.float32, device=device).expand(z0.shape[0])
    z = z0.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    history = []
    with frozen(vae, classifier):
        with torch.no_grad():
            bce_start = _target_bce(vae, classifier, z0, attr, target)
        for _ in range(steps):
            loss = _target_bce(vae, classifier, z, attr, target) + lam * (z - z0).pow(2).sum(1)
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()  # a sum keeps each row's gradient what it would be alone
            opt.step()
            history.append(float(loss.detach().mean()))
        with torch.no_grad():
            bce = _target_bce(vae, classifier, z, attr, target)
    z = z.detach()
    return GuidanceResult(z.cpu(), bce.cpu(), bce_start.cpu(), (z - z0).norm(dim=1).cpu(), history)


def score_guidance(vae: VAE, judge: Judge, z0: torch.Tensor, batch: GuidanceBatch, result: GuidanceResult,
                   attr_names, notebook: str = "label_guidance", seed: int = 0, **settings) -> list[dict]:
    """Judge scores of a guidance run (decisions at the judge's calibrated thresholds), one row per (lambda,
    attribute, direction add/remove), each followed by its control: the same faces moved by the same latent
    distance ||z - z0|| along seeded random unit directions (`random_direction`). Items whose target the judge
    already sees before the edit are left out (see `evaluate.score_edits`).

    "classifier_success" is the share of the same items that reach their target in the eyes of the
    classifier that was optimised against (BCE < ln 2, i.e. its probability is on the target's side): where
    it is far above the judge's success_rate, the edit fooled the classifier without changing the face."""
    before_all = decode(vae, z0)
    thresholds = judge.thresholds
    p, f = predict(judge.model, before_all, with_features=True)
    before, after = before_all[batch.image], decode(vae, result.z)
    z_before = z0[batch.image]
    distance = (result.z - z_before).norm(dim=1)
    z_random = z_before + distance[:, None] * random_directions(len(batch), z0.shape[1], seed)
    after_random = decode(vae, z_random)
    rows = []
    for lam in dict.fromkeys(batch.lam.tolist()):
        for a in dict.fromkeys(batch.attr.tolist()):
            sel = (batch.attr == a) & (batch.lam == lam)
            img, add = batch.image[sel], batch.target[sel] == 1
            judged = (p[img], f[img])
            scores = score_edits(judge.model, a, before[sel], after[sel], z_before[sel], result.z[sel], add,
                                 thresholds, judged)
            control = score_edits(judge.model, a, before[sel], after_random[sel], z_before[sel], z_random[sel], add,
                                  thresholds, judged)
            seen = sees(p[img, a], thresholds[a])
            for direction, goal in (("add", True), ("remove", False)):
                eligible = (add == goal) & (seen != goal)
                reached = result.bce[sel][eligible] < math.log(2)
                scores[direction]["classifier_success"] = float(reached.float().mean()) if eligible.any() else None
            common = {"lambda": lam, **settings}
            rows += edit_rows(judge, notebook, "label_guidance", attr_names[a], scores,
                              classifier_bce_start=float(result.bce_start[sel].mean()),
                              classifier_bce=float(result.bce[sel].mean()), **common)
            rows += edit_rows(judge, notebook, CONTROL, attr_names[a], control,
                              note=f"random unit directions at each edit's distance (seed {seed})", **common)
    return rows


def lambda_grid(images: torch.Tensor, batch: GuidanceBatch, image: int = 0) -> torch.Tensor:
    """The edits of face `image` from a sweep batch (one target per face and attribute), arranged with one
    row per attribute and one column per lambda."""
    sel = batch.image == image
    n_lam = len(dict.fromkeys(batch.lam.tolist()))
    picked = images[sel]  # (lambda, attribute) order
    return picked.view(n_lam, -1, *picked.shape[1:]).transpose(0, 1).flatten(0, 1)
