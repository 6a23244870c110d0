"""Feature amplification: push individual latent dimensions and find out what they control.

Dimensions are chosen by variance of the posterior means (a VAE leaves unused dimensions near zero) or by
correlation with an attribute; a push is measured in standard deviations of that dimension.
"""

from __future__ import annotations

import numpy as np
import torch

from ..models.classifier import AttributeClassifier, predict
from ..models.vae import VAE
from .directions import pearson, shift_grid
from .latents import decode


def top_variance_dims(mu: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the `k` dimensions whose posterior means vary most across images, most variable first."""
    return torch.argsort(mu.var(0), descending=True, stable=True)[:k]


def amplify(z: torch.Tensor, dims, alphas, std: torch.Tensor) -> torch.Tensor:
    """(N * A, D): every latent with dims `dims` moved together by alpha * std[dim], for each alpha.

    Row-major (sample, then alpha), the layout of a grid with one row per sample. Other dims are untouched.
    """
    dims = torch.as_tensor(dims, dtype=torch.long).reshape(-1)
    step = torch.zeros(z.shape[-1], dtype=z.dtype)
    step[dims] = std[dims].to(z.dtype)
    return shift_grid(z, step, alphas)


def attribute_correlations(mu: torch.Tensor, labels: np.ndarray) -> np.ndarray:
    """Pearson correlation (D, A) between each latent dimension and each 0/1 attribute (0 where constant)."""
    return pearson(mu.double().numpy(), labels)


def best_dim(corr: np.ndarray, attr: int, among=None) -> tuple[int, float]:
    """The dimension (optionally restricted to `among`) most correlated with attribute column `attr`,
    and its signed correlation: push it with the sign to add the attribute."""
    candidates = np.arange(corr.shape[0]) if among is None else np.asarray(among)
    j = candidates[int(np.argmax(np.abs(corr[candidates, attr])))]
    return int(j), float(corr[j, attr])


def best_dims_table(corr: np.ndarray, attr_names, names) -> list[dict]:
    """For each attribute in `names`: its most correlated dimension and the correlation."""
    rows = []
    for name in names:
        dim, r = best_dim(corr, attr_names.index(name))
        rows.append({"attribute": name, "dim": dim, "correlation": r})
    return rows


def attribute_dim_sweep(vae: VAE, z: torch.Tensor, corr: np.ndarray, attr_names, targets, alphas,
                        std: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
    """Each target's most correlated dim swept over `alphas` (signed so that + adds the attribute) on every
    latent of z: images (T * N * A, 3, H, W), one row per (target, face), and the row labels."""
    rows, labels = [], []
    for name in targets:
        dim, r = best_dim(corr, list(attr_names).index(name))
        rows.append(amplify(z, [dim], np.sign(r) * np.asarray(alphas), std))
        labels += [f"{name}: dim {dim} (r={r:+.2f})"] * z.shape[0]
    return decode(vae, torch.cat(rows)), labels


@torch.no_grad()
def explore_dims(vae: VAE, judge: AttributeClassifier, z: torch.Tensor, dims, alphas, std: torch.Tensor,
                 attr_names) -> tuple[list[dict], torch.Tensor]:
    """What each dimension in `dims` does, judged on `z` (N samples) pushed by every alpha.

    Returns one record per dimension, ranked by the largest judged attribute change between the first and
    the last alpha (a "semantic" dimension first), and the sweeps of the first latent in the same order
    (len(dims) * A images, one grid row per dimension).
    """
    alphas = list(alphas)
    images = torch.cat([decode(vae, amplify(z, [d], alphas, std)) for d in dims])
    probs = predict(judge, images)[0].view(len(dims), z.shape[0], len(alphas), -1)
    effect = (probs[:, :, -1] - probs[:, :, 0]).mean(1)  # (dims, A): mean judged change from -alpha to +alpha
    pixels = images.view(len(dims), z.shape[0], len(alphas), -1)
    records = []
    for i, d in enumerate(dims):
        order = torch.argsort(effect[i].abs(), descending=True)[:3]
        records.append({
            "dim": int(d),
            "std": float(std[d]),
            "top_attributes": [{"attribute": attr_names[j], "judged_change": float(effect[i, j])} for j in order],
            "max_judged_change": float(effect[i].abs().max()),
            "pixel_change": float((pixels[i, :, -1] - pixels[i, :, 0]).abs().mean()),
        })
    rank = sorted(range(len(records)), key=lambda i: -records[i]["max_judged_change"])
    for r, i in enumerate(rank, 1):
        records[i]["rank"] = r
    first = images.view(len(dims), z.shape[0], len(alphas), *images.shape[1:])[rank, 0]
    return [records[i] for i in rank], first.flatten(0, 1)


def ranking_rows(ranking: list[dict]) -> list[dict]:
    """Flat rows (rank, dim, attribute most changed, judged change, pixel change) for a printed table."""
    return [{"rank": r["rank"], "dim": r["dim"], "attribute": r["top_attributes"][0]["attribute"],
             "judged_change": r["top_attributes"][0]["judged_change"], "pixel_change": r["pixel_change"]}
            for r in ranking]
