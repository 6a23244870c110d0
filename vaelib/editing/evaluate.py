"""One yardstick for every edit method: what the independent judge sees before and after the edit.

Per (method, target attribute), over the edited images whose judged state is opposite to the goal:
- success_rate: share whose judged probability crosses 0.5 in the intended direction;
- other_change: mean absolute change of the other attributes' judged probabilities (side effects);
- pixel_mse, latent_l2: how far the edit moved from the original (the VAE's reconstruction, so the
  reconstruction error common to all methods is not counted);
- identity_cosine: cosine similarity of the judge's penultimate features, original vs edit;
- watched_change (03): mean absolute judged change of the attributes a conditional edit holds fixed.
Notebooks 03 and 04 each write metrics/edit_eval_<notebook>.json; `collect_edit_eval` merges them.
"""

from __future__ import annotations

import json

import numpy as np
import torch
import torch.nn.functional as F

from ..models.classifier import AttributeClassifier
from .classify import predict

COLUMNS = ("target", "method", "rendered", "n", "success_rate", "other_change", "watched_change", "pixel_mse",
           "latent_l2", "identity_cosine", "judge_balanced_accuracy")
METHOD_ORDER = ("top_variance_dim", "correlated_dim", "mean_difference", "boundary_normal", "conditional_normal",
                "label_guidance")


def intended_add(p_before: torch.Tensor) -> torch.Tensor:
    """Edit direction per image: add the attribute where the judge does not see it, remove it where it does."""
    return p_before < 0.5


def score_edits(judge: AttributeClassifier, target: int, before: torch.Tensor, after: torch.Tensor,
                z_before: torch.Tensor, z_after: torch.Tensor, add: torch.Tensor,
                judged_before: tuple[torch.Tensor, torch.Tensor] | None = None, watch=()) -> dict:
    """Metrics of edits `before` -> `after` (N, 3, H, W on [0, 1]) meant to add (add=True) or remove
    attribute column `target`. Images already on the intended side before the edit are left out.

    `judged_before` = predict(judge, before, with_features=True), when the caller has it already.
    `watch`: attribute columns whose mean absolute judged change is reported as "watched_change".
    """
    p0, f0 = judged_before if judged_before is not None else predict(judge, before, with_features=True)
    p1, f1 = predict(judge, after, with_features=True)
    keep = (p0[:, target] < 0.5) == add
    n = int(keep.sum())
    if n == 0:
        return {"n": 0}
    p0, p1, f0, f1 = p0[keep], p1[keep], f0[keep], f1[keep]
    crossed = torch.where(add[keep], p1[:, target] >= 0.5, p1[:, target] < 0.5)
    others = torch.ones(p0.shape[1], dtype=torch.bool)
    others[target] = False
    watch = list(watch)
    return {
        "n": n,
        "success_rate": float(crossed.float().mean()),
        "other_change": float((p1[:, others] - p0[:, others]).abs().mean()),
        "watched_change": float((p1[:, watch] - p0[:, watch]).abs().mean()) if watch else None,
        "pixel_mse": float((after[keep] - before[keep]).pow(2).mean()),
        "latent_l2": float((z_after[keep] - z_before[keep]).norm(dim=1).mean()),
        "identity_cosine": float(F.cosine_similarity(f0, f1, dim=1).mean()),
    }


def rendered_attributes(ctx) -> frozenset[str] | None:
    """Attributes the synthetic generator draws (its labels are ground truth); None for real CelebA."""
    if ctx.profile.data.source != "synthetic":
        return None
    from ..data import RENDERED_ATTRIBUTES  # imported here: the data package pulls in the image generator

    return frozenset(RENDERED_ATTRIBUTES)


def edit_row(ctx, notebook: str, method: str, target: str, scores: dict, **settings) -> dict:
    """A table row: the scores plus whether the target is rendered (ground truth) and how well the judge
    recognises it on the test split (from 02's metrics/classifier.json)."""
    rendered = rendered_attributes(ctx)
    judge = ctx.load_json("classifier", "02_classifier")["models"]["judge"]["per_attribute"][target]
    return {"notebook": notebook, "method": method, "target": target,
            "rendered": None if rendered is None else target in rendered,
            "judge_balanced_accuracy": judge["balanced_accuracy"], **scores, **settings}


def save_edit_eval(ctx, notebook: str, rows: list[dict]) -> None:
    ctx.save_json(f"edit_eval_{notebook}", {"rows": rows})


def collect_edit_eval(ctx) -> list[dict]:
    """Rows of every metrics/edit_eval_*.json of the run, sorted by target, then method."""
    rows = []
    for path in sorted(ctx.metrics.glob("edit_eval_*.json")):
        rows += json.loads(path.read_text())["rows"]
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    return sorted(rows, key=lambda r: (r["target"], order.get(r["method"], len(order)), r["method"]))


def format_table(rows: list[dict], columns=COLUMNS) -> str:
    """Fixed-width text table (numbers to 3 decimals) for printing in a notebook."""
    def cell(v) -> str:
        if isinstance(v, float):
            return "nan" if not np.isfinite(v) else f"{v:.3f}"
        return "-" if v is None else str(v)

    table = [list(columns)] + [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in table)
