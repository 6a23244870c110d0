"""The numbers notebook 06 saves (`likelihood_summary`; printed by `vaelib.figures.tables.format_summary`)."""

from __future__ import annotations

import torch

from .bonus import SEED_PUBLISHED_BONUS, BonusMetric
from .bounds import LikelihoodResult
from .common import mean_se


def likelihood_summary(result: LikelihoodResult, bonus: BonusMetric, log_sigma: torch.Tensor,
                       sigma_source: str) -> dict:
    """The flat dict notebook 06 saves as metrics/likelihood.json (bpd = bits per dim, se = standard error)."""
    elbo, elbo_se = result.bpd()
    distortion, rate = result.to_bpd(result.distortion), result.to_bpd(result.rate)
    return {
        "assignment_bonus": {"nll_sigma1_nats_per_dim": bonus.nll_per_dim, "kl_nats_per_latent_dim": bonus.kl_per_dim,
                             "harmonic_mean": bonus.harmonic_mean},
        "seed_published_bonus": SEED_PUBLISHED_BONUS,
        "bonus_table": [
            {"quantity": "NLL / D, sigma = 1 continuous (nats)", "this_run": bonus.nll_per_dim,
             "seed_published": SEED_PUBLISHED_BONUS["nll_per_dim"]},
            {"quantity": "KL / d (nats per latent dim)", "this_run": bonus.kl_per_dim,
             "seed_published": SEED_PUBLISHED_BONUS["kl_per_dim"]},
            {"quantity": "harmonic mean 2ab/(a+b)", "this_run": bonus.harmonic_mean,
             "seed_published": SEED_PUBLISHED_BONUS["harmonic_mean"]},
        ],
        "elbo_bpd": elbo, "elbo_bpd_se": elbo_se,
        "iwae": [dict(zip(("k", "bpd", "se"), (k, *result.bpd(k)), strict=True)) for k in sorted(result.iwae)],
        "distortion_bpd": float(distortion.mean()), "distortion_bpd_se": mean_se(distortion)[1],
        "rate_bpd": float(rate.mean()), "rate_bpd_se": mean_se(rate)[1],
        "sigma": torch.exp(log_sigma).flatten().tolist(), "sigma_source": sigma_source,
        "num_images": result.num_images, "num_dims": result.num_dims, "k_max": result.k_max,
        "seconds": result.seconds, "images_per_s": result.images_per_s,
    }
