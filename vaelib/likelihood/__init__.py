"""Honest likelihoods for 8-bit images: discretized-Gaussian ELBO / IWAE bits per dim, and the assignment's bonus.

Units. Pixels are 8-bit integers u in {0, ..., 255}; the model sees x = u / 255 on [0, 1]. Every log-likelihood
here is in nats per image unless a name says otherwise; with D = C*H*W pixel values (12288 for 3x64x64),
    bits/dim = -log P(x) / (D ln 2).
P is a probability of the 8-bit image (a discrete likelihood), so a model predicting every value uniformly
scores exactly 8 bits/dim. A continuous density on [0, 1] is not a probability of 8-bit data: it needs the
dequantization offset log(256) nats (8 bits) per dim to be comparable (see `assignment_bonus`).

Modules: `discretized` (the decoder's 8-bit pixel likelihood and its sigma), `bounds` (ELBO / IWAE),
`bonus` (the assignment's metric), `summary` (what notebook 06 saves). Images are uint8 torch
tensors (N, C, H, W) (`vaelib.data.pixels.images_tensor`). Everything is computed in float32 with autocast
disabled: at ~1e4 nats per image a bf16 step is ~64 nats.
"""

from .bonus import (
    SEED_PUBLISHED_BONUS,
    BonusMetric,
    ReconstructionStats,
    assignment_bonus,
    harmonic_mean,
    reconstruction_stats,
)
from .bounds import LikelihoodResult, evaluate_bounds, evaluate_vae
from .discretized import discrete_decoder, discretized_gaussian_log_prob, fit_pixel_sigma, resolve_log_sigma
from .summary import likelihood_summary

__all__ = [
    "SEED_PUBLISHED_BONUS",
    "BonusMetric",
    "LikelihoodResult",
    "ReconstructionStats",
    "assignment_bonus",
    "discrete_decoder",
    "discretized_gaussian_log_prob",
    "evaluate_bounds",
    "evaluate_vae",
    "fit_pixel_sigma",
    "harmonic_mean",
    "likelihood_summary",
    "reconstruction_stats",
    "resolve_log_sigma",
]
