"""An identity measure for notebook 05: an embedding fitted on training identities, checked on test identities.

The judge's features describe attributes, which many people share, so their cosine says little about who a
face is. Here Fisher's linear discriminant (scikit-learn's LinearDiscriminantAnalysis, after a PCA that keeps
it well conditioned) is fitted on features of training-split images *with their identity labels*: it finds the
directions along which people differ and their own photos do not. Test identities are unseen by it.

Everything compared is decoded by the VAE (reconstructions of real photos, transferred latents), so the
VAE's blur is common to both sides of every comparison. Two scores, each a share of two-way comparisons
(chance 0.5) with its Wilson interval:
- `verification`: a test photo is nearer the centroid of its own identity's *other* photos than the centroid
  of another test identity's photos (every photo against every other identity): how well the measure
  tells people apart at all, the baseline for reading the transfer;
- `transfer_rows`: a transferred face is nearer the centroid of the anchor's photos than the centroid of the
  subject's other photos, per K.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.pipeline import Pipeline, make_pipeline

from ..data.pixels import images_tensor
from ..errors import ConfigError
from ..models.classifier import predict
from .evaluate import rate
from .identity import transfer_grid
from .latents import decode, encode, encode_split


def fit_identity_embedding(features: np.ndarray, ids: np.ndarray, max_pca: int = 128, seed: int = 0) -> Pipeline:
    """PCA (at most `max_pca` components, fewer than the images less the identities) then LDA on features
    (N, F) of training images with their identity labels (N,). Transform gives the identity embedding."""
    n_ids = len(np.unique(ids))
    if n_ids < 2:
        raise ConfigError(f"an identity embedding needs images of at least two identities, not {n_ids}.")
    n_pca = max(1, min(max_pca, features.shape[1], len(features) - n_ids))
    return make_pipeline(PCA(n_components=n_pca, random_state=seed), LinearDiscriminantAnalysis()).fit(features, ids)


def _centroid_distances(emb: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    return np.linalg.norm(emb[:, None, :] - centroids[None, :, :], axis=2)


def verification(emb: np.ndarray, ids: np.ndarray) -> dict:
    """Share of (photo, other identity) pairs in which the photo's embedding (rows of emb, N x E) is nearer
    its own identity's other photos (centroid, the photo left out) than the other identity's photos; with
    the number of identities and photos. Identities with a single photo only serve as the "other"."""
    labels = np.unique(ids)
    if len(labels) < 2:
        raise ConfigError("identity verification needs photos of at least two identities.")
    centroids = np.stack([emb[ids == i].mean(0) for i in labels])
    counts = np.array([(ids == i).sum() for i in labels])
    wins = total = 0
    for q in range(len(emb)):
        k = int(np.searchsorted(labels, ids[q]))
        if counts[k] < 2:
            continue
        own = (centroids[k] * counts[k] - emb[q]) / (counts[k] - 1)  # centroid without the query
        d_own = np.linalg.norm(emb[q] - own)
        d_other = np.delete(np.linalg.norm(centroids - emb[q], axis=1), k)
        wins += int((d_own < d_other).sum())
        total += len(d_other)
    return {**rate(wins, total), "identities": len(labels), "photos": len(emb), "chance": 0.5}


def nearer_anchor(emb: np.ndarray, anchor_centroids: np.ndarray, subject_centroids: np.ndarray) -> np.ndarray:
    """(N,) bool: each embedded face (N x E) is nearer its anchor's centroid than its subject's (both N x E)."""
    return np.linalg.norm(emb - anchor_centroids, axis=1) < np.linalg.norm(emb - subject_centroids, axis=1)


def transfer_rows(by_k: dict[int, np.ndarray], anchor_centroids: np.ndarray, subject_centroids: np.ndarray
                  ) -> list[dict]:
    """One row per K: n pairs, how many transferred faces (embedded, by_k[K]: N x E) are nearer the anchor's
    photos than the subject's other photos, that share and its Wilson interval."""
    return [{"k": int(k), **rate(int(nearer_anchor(emb, anchor_centroids, subject_centroids).sum()), len(emb))}
            for k, emb in by_k.items()]


def measure_identity(vae, judge, data, train_idx: np.ndarray, mu, people, pca, subjects, anchors, ks,
                     seed: int = 0) -> dict:
    """Notebook 05's identity scores: the embedding fitted on the judge's features of the decoded training
    latents `mu` (their identities `data.identity[train_idx]`), its verification on every test photo, and per
    K the transfer rows for every (subject, anchor) pair of `transfer_grid` (subject s has photo 0 of
    `people.members[len(anchors) + s]`; its other photos are its reference). {"measured": False} without
    identity labels."""
    if data.identity is None:
        return {"measured": False}

    def embed(z: torch.Tensor) -> np.ndarray:  # latents -> decoded faces -> judge features -> identity space
        return embedding.transform(predict(judge, decode(vae, z), with_features=True)[1].numpy())

    embedding = fit_identity_embedding(predict(judge, decode(vae, mu), with_features=True)[1].numpy(),
                                       data.identity[train_idx], seed=seed)
    test_idx, z_test = encode_split(vae, data, "test", len(data.split("test")), seed)
    members = [encode(vae, images_tensor(data, m)) for m in people.members]
    centroid = [embed(z).mean(0) for z in members]  # all photos of each identity
    others = [embed(z[1:]).mean(0) for z in members]  # without the first photo (the subject's)
    n_anchors, n_subjects = len(anchors), len(subjects)
    pairs = [(s, a) for s in range(n_subjects) for a in range(n_anchors)]  # the order of transfer_grid
    anchor_c = np.stack([centroid[a] for _, a in pairs])
    subject_c = np.stack([others[n_anchors + s] for s, _ in pairs])
    by_k = {k: embed(transfer_grid(pca, subjects, anchors, k)) for k in ks}
    return {"measured": True, "verification": verification(embed(z_test), data.identity[test_idx]),
            "transfer": transfer_rows(by_k, anchor_c, subject_c), "train_images": len(train_idx),
            "train_identities": int(len(np.unique(data.identity[train_idx])))}
