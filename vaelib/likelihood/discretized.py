"""The decoder's pixel likelihood: a Gaussian discretized to the 256 values of an 8-bit pixel, and its sigma.

p(x|z) is a Gaussian with the decoder's mean and a per-channel sigma, discretized to the 256 bins of an 8-bit
value: bin k covers [k/255 - 1/510, k/255 + 1/510], bin 0 also takes the tail below and bin 255 the tail above,
so the 256 probabilities sum to 1. Sigma is the model's learned one, or for an MSE-trained model the closed-form
maximum-likelihood sigma on validation data -- never sigma = 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..data.batches import map_batches
from ..errors import ConfigError
from ..losses import LOG_2PI, reparameterize
from .common import check_images, device_of, float32

# log p(x|z) for x (B, *image) and latents z (B, S, d) -> (B, S): S samples per image, summed over pixels
LogPxGivenZ = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def discretized_gaussian_log_prob(
    x: torch.Tensor, mean: torch.Tensor, log_sigma: torch.Tensor, bins: int = 256
) -> torch.Tensor:
    """Elementwise log P(bin of x) under N(mean, sigma^2) discretized to `bins` values, in nats.

    x holds values k/(bins-1); the bin of x is [x - h, x + h] with h = 1/(2(bins-1)), the first bin extends to
    -inf and the last to +inf. P = Phi(b) - Phi(a) with a, b the standardised edges. For float32 accuracy:
    the interval is mirrored to the lower tail (where log Phi keeps its precision), the difference is taken as
    log Phi(b) + log(1 - exp(log Phi(a) - log Phi(b))), and where that difference loses more precision than
    a second-order midpoint rule (pdf(centre) * width, corrected) is used. Against a float64 reference this
    stays within ~2e-5 nats where log P > -20 and ~1e-6 relative in the far tails, for sigma in [1e-4, 10].
    """
    half = 0.5 / (bins - 1)
    inv_sigma = torch.exp(-log_sigma)
    t = (x - mean) * inv_sigma  # standardised bin centre
    h = half * inv_sigma  # half bin width, standardised; kept at the shape of sigma (cheap to broadcast)
    first, last = x < half, x > 1 - half
    flip = t > 0  # P([t-h, t+h]) = P([-t-h, -t+h]): work on the side where the centre is <= 0
    s = -t.abs()
    open_below = (first & ~flip) | (last & flip)
    open_above = (first & flip) | (last & ~flip)
    a = torch.where(open_below, -math.inf, s - h)
    b = torch.where(open_above, math.inf, s + h)
    la, lb = torch.special.log_ndtr(a), torch.special.log_ndtr(b)
    exact = lb + torch.log(-torch.expm1(la - lb))

    # Midpoint rule with its first correction: int_{s-h}^{s+h} pdf = 2h pdf(s) (1 + (s^2-1) h^2/6 + O(s^4 h^4)).
    s2, h2 = s * s, h * h
    midpoint = -0.5 * s2 - 0.5 * LOG_2PI + torch.log(2 * h) + torch.log1p((s2 - 1) * h2 / 6)
    # Rough relative error of each route: rounding of the edges a, b and of log Phi, divided by the difference
    # (inf/nan where it vanished), against the next term of the midpoint series.
    eps = torch.finfo(exact.dtype).eps
    err_exact = eps * (la.abs() + lb.abs() + a * a + b * b) / (lb - la)
    err_mid = (s2 * s2 + 6 * s2 + 3) * h2 * h2 / 120
    use_mid = ~(first | last) & ~(err_exact <= err_mid)
    return torch.where(use_mid, midpoint, exact)


def discrete_decoder(model: torch.nn.Module, log_sigma: torch.Tensor) -> LogPxGivenZ:
    """log p(x|z) of a VAE: its decoder mean with discretized-Gaussian pixels of the given log sigma (1,C,1,1)."""

    def log_px_given_z(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        b, s = z.shape[:2]
        mean = model.decode(z.reshape(b * s, -1)).float().view(b, s, *x.shape[1:])  # one decode per sample
        return discretized_gaussian_log_prob(x[:, None], mean, log_sigma).flatten(2).sum(-1)

    return log_px_given_z


@torch.no_grad()
def fit_pixel_sigma(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 64, seed: int = 0,
                    progress: bool = False) -> torch.Tensor:
    """Per-channel maximum-likelihood sigma of a Gaussian decoder, in closed form, on [0, 1] pixels: (C,).

    sigma_c^2 = mean over images and pixels of (x - decoder_mean(z))^2 for channel c, with one z ~ q(z|x) per
    image (the sample the ELBO's reconstruction term uses, so the fit maximises that term, not a z = mu fit
    that would be too sharp for sampled z). This is the continuous-Gaussian optimum; for sigma >> 1/255 it is
    also near-optimal for the discretized likelihood.
    """
    check_images(images, batch_size, require_uint8=True)
    device = device_of(model)
    gen = torch.Generator(device=device).manual_seed(seed)

    def squared_residuals(x: torch.Tensor) -> torch.Tensor:  # (B, C): summed over each channel's pixels
        mu, logvar = (t.float() for t in model.encode(x))
        z = reparameterize(mu, logvar, torch.randn(mu.shape, generator=gen, device=device))
        return (x - model.decode(z).float()).double().pow(2).sum(dim=(2, 3))

    with float32(device):
        per_image = map_batches(squared_residuals, images, batch_size, device, "fit sigma" if progress else None)
    return (per_image.sum(0) / (len(images) * images.shape[2] * images.shape[3])).sqrt().float()


def resolve_log_sigma(model: torch.nn.Module, val_images: torch.Tensor | None = None, batch_size: int = 64,
                      seed: int = 0, progress: bool = False) -> tuple[torch.Tensor, str]:
    """(log sigma as (1,C,1,1) float32 on the model's device, "learned" | "fitted on val").

    A Gaussian-trained model uses its own learned sigma; an MSE-trained model has none, so it is fitted on
    `val_images` (see `fit_pixel_sigma`). Sigma = 1 is never assumed: without either, this is a ConfigError.
    """
    learned = model.pixel_log_sigma()
    if learned is not None:
        log_sigma, source = learned.detach().float().reshape(1, -1, 1, 1), "learned"
    elif val_images is None:
        raise ConfigError(
            "this model was trained with the MSE loss and has no pixel sigma: pass validation images so one is "
            "fitted by maximum likelihood (a fixed sigma = 1 would make bits/dim meaningless)."
        )
    else:
        sigma = fit_pixel_sigma(model, val_images, batch_size, seed, progress)
        if not (torch.isfinite(sigma).all() and (sigma > 0).all()):
            raise ConfigError(f"fitted pixel sigma {sigma.tolist()} is not finite and positive; check the model.")
        log_sigma, source = sigma.log().reshape(1, -1, 1, 1).to(device_of(model)), "fitted on val"
    if not torch.isfinite(log_sigma).all():
        raise ConfigError(f"the model's pixel log-sigma {log_sigma.flatten().tolist()} is not finite; "
                          "the checkpoint is unusable for likelihoods.")
    return log_sigma, source
