"""Identity transfer: swap the leading principal components of a subject's latent for an anchor's.

An identity's "essence" is the mean latent of several images of one person: pose, expression and lighting
average out, what the person keeps remains. PCA of the latents finds rotated directions (combinations of
latent dimensions) ordered by the variance along them; the first K carry the coarse traits (face shape, skin,
hair), which are taken from the anchor, while the subject keeps the rest. K = 0 leaves the subject unchanged,
K = latent_dim gives the anchor's essence. Whether the result is the anchor's identity is measured by
`identity_measure`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.decomposition import PCA

from ..data.pixels import images_tensor, to_float
from ..errors import ConfigError
from ..models.vae import VAE
from .latents import decode, encode


def fit_pca(latents: torch.Tensor, seed: int = 0) -> PCA:
    """PCA with all min(N, D) components of the latents (N, D)."""
    if latents.shape[0] < 2:
        raise ConfigError("PCA needs at least two latents.")
    return PCA(random_state=seed).fit(latents.double().numpy())


def transfer(pca: PCA, subject: torch.Tensor, anchor: torch.Tensor, k: int) -> torch.Tensor:
    """subject + P_k (anchor - subject), P_k the projection on the first k principal components.

    Written as a projection of the difference (not transform / inverse_transform) so that K = 0 returns the
    subject exactly, even when PCA was fitted on fewer latents than dimensions.
    """
    k = int(k)
    if not 0 <= k <= subject.shape[-1]:
        raise ConfigError(f"K must be between 0 and the latent size {subject.shape[-1]}, not {k}.")
    w = torch.from_numpy(pca.components_[:k]).to(subject)  # (k, D), orthonormal rows
    diff = anchor.to(subject) - subject
    return subject + (diff @ w.T) @ w


def transfer_grid(pca: PCA, subjects: torch.Tensor, anchors: torch.Tensor, k: int) -> torch.Tensor:
    """(S * A, D): every subject (rows) given the first k components of every anchor (columns)."""
    s, a = subjects.shape[0], anchors.shape[0]
    return transfer(pca, subjects.repeat_interleave(a, 0), anchors.repeat(s, 1), k)


@dataclass(frozen=True)
class Essences:
    ids: list[int]  # identity label of each essence (the image index when there are no identity labels)
    members: list[np.ndarray]  # dataset indices of the images averaged
    z: torch.Tensor  # (n, D) mean latent of the members
    single: torch.Tensor  # (n, D) latent of the first member alone: one photo of the person


def pick_identities(identity: np.ndarray | None, pool: np.ndarray, n: int, min_images: int = 10,
                    per_identity: int = 10, seed: int = 0) -> tuple[list[int], list[np.ndarray]]:
    """`n` identities with >= min_images images among dataset indices `pool`, and up to `per_identity` of
    their images each. Without identity labels (Kaggle layout): `n` single images."""
    rng = np.random.default_rng(seed)
    if identity is None:
        chosen = np.sort(rng.permutation(pool)[:n])
        return [int(i) for i in chosen], [np.array([i]) for i in chosen]
    ids, counts = np.unique(identity[pool], return_counts=True)
    eligible = ids[counts >= min_images]
    if len(eligible) < n:
        raise ConfigError(f"only {len(eligible)} identities have >= {min_images} images in this split, {n} "
                          "needed; lower MIN_IMAGES or the number of anchors and subjects.")
    picked = np.sort(rng.choice(eligible, size=n, replace=False))
    members = [np.sort(rng.permutation(pool[identity[pool] == i])[:per_identity]) for i in picked]
    return [int(i) for i in picked], members


def identity_essences(vae: VAE, data, split: str, n: int, min_images: int = 10, per_identity: int = 10,
                      seed: int = 0) -> Essences:
    """Essences (mean posterior latents) of `n` identities of `split`; single images without identity labels."""
    ids, members = pick_identities(data.identity, data.split(split), n, min_images, per_identity, seed)
    mu = encode(vae, images_tensor(data, np.concatenate(members)))
    parts = torch.split(mu, [len(m) for m in members])
    return Essences(ids, members, torch.stack([p.mean(0) for p in parts]), torch.stack([p[0] for p in parts]))


@dataclass(frozen=True)
class TransferEdit:
    """A slider edit for identity transfer: the strength is K, the number of components taken."""

    pca: PCA
    anchor: torch.Tensor

    def __call__(self, z: torch.Tensor, strength: float) -> torch.Tensor:
        return transfer(self.pca, z, self.anchor, round(strength))


def k_sweep_latents(pca: PCA, subjects: torch.Tensor, anchors: torch.Tensor, ks) -> torch.Tensor:
    """(P * len(ks), D): subject i given anchor i's first K components, for each K (P = matched pairs)."""
    pairs = min(len(subjects), len(anchors))
    return torch.cat([transfer(pca, subjects[i:i + 1], anchors[i:i + 1], k) for i in range(pairs) for k in ks])


def essence_rows(vae: VAE, data, essences: Essences, n_show: int = 5) -> torch.Tensor:
    """Per essence: up to `n_show` of the images averaged (white where fewer) and the decoded essence."""
    rows = []
    for members, z in zip(essences.members, essences.z, strict=True):
        shown = to_float(images_tensor(data, members[:n_show]))
        pad = torch.ones(n_show - len(shown), *shown.shape[1:])
        rows += [shown, pad, decode(vae, z[None])]
    return torch.cat(rows)
