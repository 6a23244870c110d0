"""Plots of notebooks 02-05 (bars, heatmaps, trade-off curves); image grids are in `figures.grids`."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def classifier_accuracy_figure(per_attribute: dict[str, dict[str, float]], title: str, marked=None):
    """Horizontal bars per attribute: accuracy and balanced accuracy, with the majority baseline as a tick.
    Attributes in `marked` (e.g. the ones the synthetic generator draws) get a star."""
    names = list(per_attribute)
    y = np.arange(len(names))
    get = {k: np.array([per_attribute[n][k] for n in names]) for k in per_attribute[names[0]]}
    fig, ax = plt.subplots(figsize=(6.5, 0.2 * len(names) + 1.2))
    ax.barh(y - 0.2, get["accuracy"], height=0.4, label="accuracy")
    ax.barh(y + 0.2, get["balanced_accuracy"], height=0.4, label="balanced accuracy")
    ax.scatter(get["majority_baseline"], y - 0.2, marker="|", s=60, color="black", label="majority baseline")
    labels = [f"{n} *" if marked and n in marked else n for n in names]
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("test split")
    ax.axvline(0.5, color="grey", lw=0.5, ls=":")
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    ax.set_title(title + ("\n* = drawn by the synthetic generator" if marked else ""), fontsize=9, pad=18)
    fig.tight_layout()
    return fig


def correlation_heatmap(corr: np.ndarray, attr_names, attributes, n_dims: int = 24):
    """Correlation of latent dims with attributes: the `n_dims` dims with the largest |r| for any of them."""
    cols = [list(attr_names).index(a) for a in attributes]
    sub = corr[:, cols]
    dims = np.argsort(-np.abs(sub).max(1), kind="stable")[:n_dims]
    fig, ax = plt.subplots(figsize=(0.28 * len(dims) + 2.5, 0.22 * len(cols) + 1.2))
    im = ax.imshow(sub[dims].T, cmap="coolwarm", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(len(dims)), [str(d) for d in dims], fontsize=6, rotation=90)
    ax.set_yticks(range(len(cols)), list(attributes), fontsize=6)
    ax.set_xlabel("latent dimension")
    fig.colorbar(im, ax=ax, fraction=0.03, label="Pearson r")
    fig.tight_layout()
    return fig


def _pooled(rows: list[dict], method: str, target: str, lam: float) -> tuple[float, float, float] | None:
    """(latent_l2, success rate, classifier success) of one (method, target, lambda), add and remove pooled
    (weighted by their n); None when no face was eligible."""
    picked = [r for r in rows if r["method"] == method and r["target"] == target and r["lambda"] == lam and r["n"]]
    n = sum(r["n"] for r in picked)
    if not n:
        return None
    mean = {k: sum(r[k] * r["n"] for r in picked) / n if all(r.get(k) is not None for r in picked) else np.nan
            for k in ("latent_l2", "success_rate", "classifier_success")}
    return mean["latent_l2"], mean["success_rate"], mean["classifier_success"]


def guidance_tradeoff_figure(rows: list[dict]):
    """Success against latent distance, one point per lambda (labelled), one colour per target, add and
    remove edits pooled: judged by the independent judge (solid), by the classifier that guidance optimised
    against (dashed), and the judge on random directions at the same distances (dotted, the control)."""
    fig, ax = plt.subplots(figsize=(5.4, 3.6))
    lambdas = sorted(dict.fromkeys(r["lambda"] for r in rows))
    for target in dict.fromkeys(r["target"] for r in rows):
        pts = [(lam, _pooled(rows, "label_guidance", target, lam), _pooled(rows, "random_direction", target, lam))
               for lam in lambdas]
        pts = [(lam, g, c) for lam, g, c in pts if g is not None]
        if not pts:
            continue
        x = [g[0] for _, g, _ in pts]
        (line,) = ax.plot(x, [g[1] for _, g, _ in pts], marker="o", label=f"{target} (judge)")
        ax.plot(x, [g[2] for _, g, _ in pts], marker="x", ls="--", color=line.get_color(),
                label=f"{target} (classifier)")
        ax.plot(x, [c[1] if c else np.nan for _, _, c in pts], marker=".", ls=":", color=line.get_color(),
                label=f"{target} (random direction)")
        for lam, g, _ in pts:
            ax.annotate(f"{lam:g}", (g[0], g[1]), fontsize=6, textcoords="offset points", xytext=(3, 3))
    faces = max(sum(r["n"] for r in rows if r["method"] == "label_guidance" and r["target"] == t and r["lambda"] == lam)
                for t in dict.fromkeys(r["target"] for r in rows) for lam in lambdas)
    ax.set_title(f"at most {faces} face(s) per target and lambda", fontsize=8)
    ax.set_xlabel("mean ||z - z0|| (point labels: lambda)")
    ax.set_ylabel("success rate (add and remove pooled)")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    return fig


def k_sweep_figure(rows: list[dict], latent_dim: int, baseline: dict):
    """Share of transferred faces nearer the anchor than the subject in the identity embedding, against K, with
    Wilson 95 % intervals (rows of `identity_measure.transfer_rows`); the verification rate of the embedding
    on test identities (`baseline`) and chance as reference lines."""
    pts = [r for r in rows if r["n"]]
    ks = np.array([r["k"] for r in pts])
    share = np.array([r["success_rate"] for r in pts])
    err = np.array([[r["success_rate"] - r["success_lo"] for r in pts],
                    [r["success_hi"] - r["success_rate"] for r in pts]])
    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    ax.errorbar(ks, share, yerr=err, marker="o", capsize=3, label="transferred face nearer the anchor")
    ax.axhline(baseline["success_rate"], color="green", ls="--", lw=1,
               label="verification: photo nearer its own identity")
    ax.axhline(0.5, color="grey", ls=":", lw=1, label="chance")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlim(0, latent_dim)
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("K (principal components taken from the anchor)")
    ax.set_ylabel("share of pairs (95 % Wilson)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
