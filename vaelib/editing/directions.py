"""Attribute directions in latent space and edits along them (InterFaceGAN-style).

Every direction is a unit vector `u` pointing towards "attribute present"; an edit is z + d * scale * u with
one `scale` for every direction: the root mean variance of the encoded latents (`latent_scale`), about 1 for
a VAE whose aggregate posterior fills its N(0, I) prior, larger early in the KL warm-up. Single dimensions,
mean differences and boundary normals are thus compared at equal latent distance. (A per-direction std unit
would stretch directions that point where the data barely varies, which the decoder largely ignores.)
`spread` reports how much the encoded data varies along a direction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from ..errors import ConfigError

BOUNDARY_METHODS = ("logistic", "svm")


def unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm().clamp_min(1e-12)


def axis(dim: int, latent_dim: int, sign: float = 1.0) -> torch.Tensor:
    """The single latent dimension `dim` as a direction (sign +1 or -1)."""
    u = torch.zeros(latent_dim)
    u[dim] = 1.0 if sign >= 0 else -1.0
    return u


def latent_scale(mu: torch.Tensor) -> float:
    """Root mean (over dimensions) variance of the encoded latents (N, D): the unit of edit distance."""
    return float(mu.var(0).mean().sqrt())


def spread(mu: torch.Tensor, u: torch.Tensor) -> float:
    """Standard deviation of the latents projected on `u` (for a single dim: that dim's std)."""
    return float((mu @ u).std())


def _check_labels(y: np.ndarray, name: str) -> None:
    if y.min() == y.max():
        raise ConfigError(f"attribute {name!r} has a single class among the {len(y)} encoded images, so it has "
                          "no direction; choose another attribute or encode more images.")


def mean_difference(mu: torch.Tensor, y: np.ndarray, name: str = "attribute") -> torch.Tensor:
    """Unit vector from the mean latent without the attribute to the mean latent with it."""
    y = np.asarray(y).astype(bool)
    _check_labels(y, name)
    mask = torch.from_numpy(y)
    return unit(mu[mask].mean(0) - mu[~mask].mean(0))


def boundary_normal(mu: torch.Tensor, y: np.ndarray, method: str = "logistic", name: str = "attribute",
                    seed: int = 0, c: float = 1.0) -> torch.Tensor:
    """Unit normal of a linear classifier separating the attribute in latent space (InterFaceGAN's boundary).

    Class weights are balanced so that a rare attribute (Eyeglasses ~6 % of CelebA) still gets a boundary
    between the classes instead of one that predicts "absent" everywhere. `c` is scikit-learn's inverse
    L2 strength: a classifier's normal is a *filter* that cancels variation correlated with the attribute,
    so it can point where the latents (and the decoded faces) barely vary; as c -> 0 it turns towards the
    mean difference, the *pattern* of the attribute (Haufe et al., NeuroImage 2014).
    """
    if method not in BOUNDARY_METHODS:
        raise ConfigError(f"boundary method must be one of {BOUNDARY_METHODS}, not {method!r}.")
    y = np.asarray(y).astype(int)
    _check_labels(y, name)
    x = mu.double().numpy()
    if method == "logistic":
        clf = LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
    else:
        clf = LinearSVC(C=c, class_weight="balanced", max_iter=5000, random_state=seed)
    clf.fit(x, y)
    return unit(torch.from_numpy(clf.coef_[0]).float())


def conditional(direction: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
    """`direction` with the span of the conditioning normals (k, D) projected out, renormalised.

    Moving along the result leaves every conditioning boundary's signed distance unchanged, e.g. adding
    eyeglasses without moving across the Male boundary (InterFaceGAN's conditional manipulation).
    """
    if conditions.numel() == 0:
        return unit(direction)
    q, _ = torch.linalg.qr(conditions.T.double())  # (D, k) orthonormal basis of the conditions
    d = direction.double()
    rest = d - q @ (q.T @ d)
    if rest.norm() < 1e-6 * d.norm():
        raise ConfigError("the edit direction lies in the span of its conditioning directions; condition on "
                          "fewer or other attributes.")
    return unit(rest).float()


def pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation (Dx, Dy) between the columns of x (N, Dx) and y (N, Dy); 0 where a column is
    constant. On 0/1 columns this is the phi coefficient."""
    x = np.asarray(x, dtype=float) - np.mean(x, axis=0)
    y = np.asarray(y, dtype=float) - np.mean(y, axis=0)
    denom = np.outer(np.linalg.norm(x, axis=0), np.linalg.norm(y, axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num((x.T @ y) / denom, nan=0.0)


def correlated_attributes(labels: np.ndarray, target: int, n: int) -> list[int]:
    """Columns of the `n` attributes whose labels correlate most (|phi|) with column `target`."""
    phi = np.abs(pearson(labels, labels[:, [target]])[:, 0])
    phi[target] = -1.0
    return [int(j) for j in np.argsort(-phi, kind="stable")[:n] if phi[j] > 0]


def shift_grid(z: torch.Tensor, step: torch.Tensor, amounts) -> torch.Tensor:
    """(N * S, D): each of the N latents plus every amount times `step` (row-major: sample, then amount)."""
    a = torch.as_tensor(list(amounts), dtype=z.dtype)
    return (z[:, None, :] + a[None, :, None] * step.to(z.dtype)[None, None, :]).reshape(-1, z.shape[-1])


class Edit(Protocol):
    """A slider edit: (latents z (N, D), strength) -> edited latents (N, D)."""

    def __call__(self, z: torch.Tensor, strength: float) -> torch.Tensor: ...


@dataclass(frozen=True)
class Direction:
    """A unit vector `u` (D,) towards "attribute present", and the edit along it: z + strength * scale * u."""

    u: torch.Tensor
    scale: float = 1.0  # latent distance of one unit of strength (`latent_scale`)
    spread: float = math.nan  # standard deviation of the encoded latents along u (diagnostic)
    note: str = ""  # e.g. "dim 17 (r=+0.42)" or "orthogonal to Male, Young"
    conditions: tuple[str, ...] = ()  # attributes whose boundaries the direction is orthogonal to

    def __call__(self, z: torch.Tensor, strength: float) -> torch.Tensor:
        return z + strength * self.scale * self.u.to(z)
