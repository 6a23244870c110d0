"""Plots of notebooks 02-05 (bars, heatmaps, trade-off curves); image grids use `vaelib.viz`."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch


def with_originals(originals: torch.Tensor, edits: torch.Tensor) -> torch.Tensor:
    """Prepend each row of an edit grid (N * C images, row-major) with its original: N * (C + 1) images."""
    n = originals.shape[0]
    return torch.cat([originals[:, None], edits.view(n, -1, *edits.shape[1:])], 1).flatten(0, 1)


def table_grid(top: torch.Tensor, left: torch.Tensor, body: torch.Tensor) -> torch.Tensor:
    """A grid with a header row (`top`, A images) and a header column (`left`, S images) around `body`
    (S * A images, row-major), and a white corner: (S + 1) * (A + 1) images."""
    corner = torch.ones_like(top[:1])
    rows = [torch.cat([corner, top])]
    rows += [torch.cat([left[i:i + 1], body[i * len(top):(i + 1) * len(top)]]) for i in range(len(left))]
    return torch.cat(rows)


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


def guidance_tradeoff_figure(rows: list[dict]):
    """Success against latent distance, one point per lambda (labelled), one colour per target: judged by
    the independent judge (solid) and by the classifier that guidance optimised against (dashed)."""
    fig, ax = plt.subplots(figsize=(5.4, 3.6))
    for target in dict.fromkeys(r["target"] for r in rows):
        pts = sorted((r for r in rows if r["target"] == target and r.get("n")), key=lambda r: r["lambda"])
        x = [r["latent_l2"] for r in pts]
        (line,) = ax.plot(x, [r["success_rate"] for r in pts], marker="o", label=f"{target} (judge)")
        ax.plot(x, [r["classifier_success"] for r in pts], marker="x", ls="--", color=line.get_color(),
                label=f"{target} (classifier)")
        for r in pts:
            ax.annotate(f"{r['lambda']:g}", (r["latent_l2"], r["success_rate"]), fontsize=6,
                        textcoords="offset points", xytext=(3, 3))
    ax.set_xlabel("mean ||z - z0|| (point labels: lambda)")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    return fig


def k_sweep_figure(rows: list[dict], latent_dim: int):
    """Judge-feature cosine of the transferred face to the anchor essence and to the subject, against K
    (rows of `identity.k_sweep`)."""
    ks = [r["k"] for r in rows]
    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    ax.plot(ks, [r["to_anchor"] for r in rows], marker="o", label="vs anchor essence")
    ax.plot(ks, [r["to_subject"] for r in rows], marker="s", label="vs subject")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlim(0, latent_dim)
    ax.set_xlabel("K (principal components taken from the anchor)")
    ax.set_ylabel("cosine of judge features")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
