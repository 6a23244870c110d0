"""Figures of a trained VAE for notebooks 01 and 06 and the report: loss curves, reconstructions, latent
interpolation, temperature samples and the IWAE bound against K. Each returns a matplotlib figure or an
image tensor; saving is the caller's (`figures.grids`)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from ..data.pixels import to_float


def loss_curves(history: dict):
    """Per-step training reconstruction term and KL (with beta), and the per-epoch validation loss, each on a
    linear axis: a learned-sigma Gaussian NLL is negative once sigma < 0.24, which a log axis would hide."""
    steps, epochs = history["steps"], history["epochs"]
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(12, 3.4))
    x = [s["epoch"] for s in steps]
    ax1.plot(x, [s["recon"] for s in steps])
    ax1.set(xlabel="epoch", ylabel="per image (train)", title="reconstruction term")
    ax2.plot(x, [s["kl"] for s in steps], label="KL")
    ax2.set(xlabel="epoch", ylabel="nats per image (train)", title="KL and its weight")
    beta_ax = ax2.twinx()
    beta_ax.plot(x, [s["beta"] for s in steps], color="grey", ls="--", label="beta")
    beta_ax.set_ylim(0, 1.05)
    beta_ax.set_ylabel("KL weight beta")
    lines = ax2.get_legend_handles_labels()[0] + beta_ax.get_legend_handles_labels()[0]
    ax2.legend(lines, [ln.get_label() for ln in lines], fontsize=8, loc="center right")
    e = [r["epoch"] for r in epochs]
    ax3.plot(e, [r["val_loss"] for r in epochs], marker="o", label="validation (beta = 1)")
    ax3.plot(e, [r["train_loss"] for r in epochs], marker="o", label="train (beta-weighted)")
    ax3.set(xlabel="epoch", ylabel="loss per image", title="loss per epoch")
    ax3.legend(fontsize=8)
    name = history.get("validation_loss")
    if name:  # what the validation loss measures differs between recipes; say it under the plots
        fig.text(0.5, -0.02, f"validation loss: {name}", ha="center", va="top", fontsize=8, wrap=True)
    fig.tight_layout()
    return fig


@torch.no_grad()
def reconstructions(model, images: torch.Tensor) -> torch.Tensor:
    """Originals (uint8 (N, 3, H, W)) in the first row, reconstructions from z = mu (the posterior mean) in the
    second."""
    device = next(model.parameters()).device
    x = to_float(images.to(device))
    recon = model.decode(model.encode(x)[0])
    return torch.cat([x, recon]).cpu()


@torch.no_grad()
def interpolations(model, starts: torch.Tensor, ends: torch.Tensor, steps: int = 8) -> torch.Tensor:
    """One row per pair (uint8 images (N, 3, H, W) each): decoded images on the straight line between the
    posterior means of starts[i] and ends[i]."""
    device = next(model.parameters()).device
    mu_a, mu_b = (model.encode(to_float(x.to(device)))[0] for x in (starts, ends))
    t = torch.linspace(0, 1, steps, device=device).view(1, steps, 1)
    return model.decode(((1 - t) * mu_a[:, None] + t * mu_b[:, None]).flatten(0, 1)).cpu()


@torch.no_grad()
def temperature_samples(model, temperatures: list[float], per_row: int = 8, seed: int = 0) -> torch.Tensor:
    """One row per temperature, the same base noise in every row so only the scale differs."""
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)  # fixed evaluation latents, independent of the global RNG
    eps = torch.randn(per_row, model.cfg.latent_dim, generator=gen).to(device)
    return torch.cat([model.decode(eps * t) for t in temperatures]).cpu()


@torch.no_grad()
def fitted_gaussian_samples(model, latents: torch.Tensor, temperatures: list[float], per_row: int = 8,
                            seed: int = 0) -> torch.Tensor:
    """Like `temperature_samples`, but the draws come from N(mean, covariance) of `latents` (N, D), the encoded
    training images, instead of the prior N(0, I): ex-post density estimation (Ghosh et al., 2020). Where the
    posterior means do not fill the prior (other spread, correlated dims), prior draws land where the decoder saw
    no code; these land among the codes it was trained on."""
    device = next(model.parameters()).device
    mean, cov = latents.mean(0), torch.cov(latents.T)
    chol = torch.linalg.cholesky(cov + 1e-5 * torch.eye(len(mean)))  # jitter: some dims may be nearly constant
    gen = torch.Generator().manual_seed(seed)
    eps = torch.randn(per_row, len(mean), generator=gen)
    return torch.cat([model.decode((mean + t * eps @ chol.T).to(device)) for t in temperatures]).cpu()


def iwae_vs_k(summary: dict):
    """IWAE-K bits/dim against K with the ELBO for reference, from `likelihood.likelihood_summary`."""
    ks = [r["k"] for r in summary["iwae"]]
    fig, ax = plt.subplots(figsize=(4.5, 3))
    ax.plot(ks, [r["bpd"] for r in summary["iwae"]], marker="o", label="IWAE-K bound")
    ax.axhline(summary["elbo_bpd"], color="gray", linestyle="--", label="ELBO (closed-form KL)")
    ax.set(xscale="log", xlabel="K (importance samples per image)", ylabel="bits / dim (upper bound)",
           title=f"{summary['num_images']} test images, SE over images {summary['elbo_bpd_se']:.3f}")
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.minorticks_off()
    ax.legend()
    return fig
