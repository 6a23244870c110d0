"""How well the classifier and the judge of notebook 02 recognise each attribute on the test split."""

from __future__ import annotations

import numpy as np
import torch

from ..data.pixels import images_tensor
from ..models.classifier import AttributeClassifier, predict


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
