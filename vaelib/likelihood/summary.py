"""The numbers notebook 06 saves (`likelihood_summary`) and prints (`format_summary`)."""

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


def format_summary(summary: dict) -> str:
    """A plain-text table of `likelihood_summary` (what notebook 06 prints)."""
    b, seed = summary["assignment_bonus"], summary["seed_published_bonus"]
    rows = [
        ("Bonus: NLL / D (sigma = 1)", f"{b['nll_sigma1_nats_per_dim']:.4f}",
         f"nats/dim (seed: {seed['nll_per_dim']})"),
        ("Bonus: KL / d", f"{b['kl_nats_per_latent_dim']:.4f}", f"nats/latent dim (seed: {seed['kl_per_dim']})"),
        ("Bonus: harmonic mean", f"{b['harmonic_mean']:.4f}", f"2ab/(a+b) (seed: {seed['harmonic_mean']})"),
        ("ELBO", f"{summary['elbo_bpd']:.4f} +- {summary['elbo_bpd_se']:.4f}", "bits/dim"),
        *((f"IWAE K={r['k']}", f"{r['bpd']:.4f} +- {r['se']:.4f}", "bits/dim") for r in summary["iwae"]),
        ("  distortion", f"{summary['distortion_bpd']:.4f}", "bits/dim"),
        ("  rate (KL)", f"{summary['rate_bpd']:.4f}", "bits/dim"),
        ("pixel sigma", ", ".join(f"{s:.4f}" for s in summary["sigma"]), summary["sigma_source"]),
        ("speed", f"{summary['images_per_s']:.1f}", f"images/s at K={summary['k_max']}"),
    ]
    w = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
    return "\n".join(f"{name:<{w[0]}}  {value:>{w[1]}}  {unit}" for name, value, unit in rows)
