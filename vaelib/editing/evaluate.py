"""One yardstick for every edit method: the independent judge's decision before and after the edit.

The judge "sees" attribute j when its probability reaches its threshold for j, calibrated on the validation
split by notebook 02 (`training.classifier.calibrate_thresholds`) and stored in its checkpoint (all of it
travels as one `Judge`). Adding and removing an attribute are scored apart (a `direction` column): an add edit
counts only on faces whose unedited reconstruction the judge sees *without* the attribute, a remove edit only on
faces it sees with it; success = the judge's decision flips to the goal. Per (method, target, direction):
- n, successes, success_rate and its Wilson 95 % interval (success_lo, success_hi);
- other_change: mean absolute change of the other attributes' judged probabilities (side effects);
- pixel_mse, latent_l2: how far the edit moved from the original (the VAE's reconstruction, so the
  reconstruction error common to all methods is not counted);
- judge_feature_cosine: cosine of the judge's penultimate features before and after. Those features encode
  attributes, not identity: it is high between unrelated faces and falls by construction when the target
  changes (identity is measured in notebook 05);
- watched_change (03): mean absolute judged change of the attributes a conditional edit holds fixed.
Every method has a control row, `random_direction`: the same faces moved by the same latent distance along
random unit directions, so that faces near the judge's threshold that cross by chance are visible.
Notebooks 03 and 04 each write their rows to the run folder; `sort_edit_rows` orders their merge.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from scipy.stats import binomtest

from ..models.classifier import AttributeClassifier, predict

COLUMNS = ("target", "method", "direction", "rendered", "n", "successes", "success_rate", "success_lo",
           "success_hi", "other_change", "watched_change", "pixel_mse", "latent_l2", "judge_threshold",
           "judge_balanced_accuracy")
METHOD_ORDER = ("top_variance_dim", "correlated_dim", "mean_difference", "boundary_normal", "conditional_normal",
                "label_guidance", "random_direction")
DIRECTIONS = ("add", "remove")
CONTROL = "random_direction"


@dataclass(frozen=True)
class Judge:
    """The yardstick of every edit: the judge network, its calibrated decision thresholds (A,), how well it
    recognises each attribute on the test split (per attribute name: "threshold", "balanced_accuracy"), and the
    attributes whose labels are ground truth because the data set renders them (None for real CelebA)."""

    model: AttributeClassifier
    thresholds: torch.Tensor
    quality: dict[str, dict[str, float]]
    rendered: frozenset[str] | None = None


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Wilson score interval of a binomial rate (scipy); (None, None) when n = 0."""
    if n == 0:
        return None, None
    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def rate(successes: int, n: int) -> dict:
    """n, successes, success_rate and its Wilson 95 % interval, as table columns."""
    lo, hi = wilson_interval(successes, n)
    return {"n": int(n), "successes": int(successes), "success_rate": successes / n if n else None,
            "success_lo": lo, "success_hi": hi}


def sees(probs: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """The judge's decisions (N, A) bool: probability at or above each attribute's threshold (A,)."""
    return probs >= thresholds.to(probs)


def random_directions(n: int, dim: int, seed: int) -> torch.Tensor:
    """(n, dim) seeded random unit vectors, uniform on the sphere: the control of every edit method."""
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(n, dim, generator=g)
    return v / v.norm(dim=1, keepdim=True)


def score_edits(judge: AttributeClassifier, target: int, before: torch.Tensor, after: torch.Tensor,
                z_before: torch.Tensor, z_after: torch.Tensor, add: torch.Tensor, thresholds: torch.Tensor,
                judged_before: tuple[torch.Tensor, torch.Tensor] | None = None, watch=()) -> dict[str, dict]:
    """{"add": scores, "remove": scores} of edits `before` -> `after` (N, 3, H, W on [0, 1]), each meant to
    add (add=True) or remove attribute column `target`, judged with per-attribute `thresholds` (A,).
    Faces the judge already sees on the goal side before the edit are left out of n.

    `judged_before` = predict(judge, before, with_features=True), when the caller has it already.
    `watch`: attribute columns whose mean absolute judged change is reported as "watched_change".
    """
    p0, f0 = judged_before if judged_before is not None else predict(judge, before, with_features=True)
    p1, f1 = predict(judge, after, with_features=True)
    seen0, seen1 = sees(p0[:, target], thresholds[target]), sees(p1[:, target], thresholds[target])
    others = torch.ones(p0.shape[1], dtype=torch.bool)
    others[target] = False
    watch = list(watch)
    out = {}
    for direction, goal in (("add", True), ("remove", False)):
        keep = (add == goal) & (seen0 != goal)
        n = int(keep.sum())
        if n == 0:
            out[direction] = rate(0, 0)
            continue
        d0, d1 = p0[keep], p1[keep]
        out[direction] = {
            **rate(int((seen1[keep] == goal).sum()), n),
            "other_change": float((d1[:, others] - d0[:, others]).abs().mean()),
            "watched_change": float((d1[:, watch] - d0[:, watch]).abs().mean()) if watch else None,
            "pixel_mse": float((after[keep] - before[keep]).pow(2).mean()),
            "latent_l2": float((z_after[keep] - z_before[keep]).norm(dim=1).mean()),
            "judge_feature_cosine": float(F.cosine_similarity(f0[keep], f1[keep], dim=1).mean()),
        }
    return out


def edit_rows(judge: Judge, notebook: str, method: str, target: str, scores: dict[str, dict], **settings
              ) -> list[dict]:
    """One table row per direction (add, remove): the scores plus whether the target is rendered (ground
    truth), the judge's threshold for it and how well the judge recognises it on the test split."""
    quality = judge.quality[target]
    return [{"notebook": notebook, "method": method, "target": target, "direction": direction,
             "rendered": None if judge.rendered is None else target in judge.rendered,
             "judge_threshold": quality["threshold"], "judge_balanced_accuracy": quality["balanced_accuracy"],
             **scores[direction], **settings} for direction in DIRECTIONS]


def sort_edit_rows(rows: list[dict]) -> list[dict]:
    """The edit rows of several notebooks in one order: by target, direction, then method (the random-direction
    control of each notebook last, notebook 03's methods before the others)."""
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    return sorted(rows, key=lambda r: (r["target"], r.get("direction", ""), r.get("notebook") != "feature_amp",
                                       order.get(r["method"], len(order)), r["method"]))
