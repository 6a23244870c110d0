"""ELBO and importance-weighted (IWAE) bounds on log p(x), per image, for any encoder / decoder-likelihood pair.

With z_k ~ q(z|x) and log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x),
    IWAE-K = log (1/K) sum_k w_k = logsumexp_k(log w_k) - log K  <=  log p(x),
and the ELBO = E_q log p(x|z) - KL(q(z|x) || p(z)) (distortion by Monte Carlo, rate in closed form).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..data.batches import map_batches
from ..errors import ConfigError
from ..losses import kl_standard_normal, reparameterize
from .common import LN2, check_images, device_of, float32, mean_se, to_numpy
from .discretized import LogPxGivenZ, discrete_decoder

Encode = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class LikelihoodResult:
    """Per-image bounds in nats (arrays of shape (N,)); bits/dim means with standard errors over images."""

    num_dims: int  # D = C*H*W
    k_max: int  # latent samples drawn per image
    distortion: np.ndarray  # -E_q log p(x|z), Monte Carlo over k_max samples
    rate: np.ndarray  # KL(q(z|x) || p(z)), closed form
    iwae: dict[int, np.ndarray]  # K -> IWAE-K lower bound on log p(x)
    seconds: float

    @property
    def elbo(self) -> np.ndarray:
        return -(self.distortion + self.rate)

    @property
    def num_images(self) -> int:
        return len(self.rate)

    @property
    def images_per_s(self) -> float:
        return self.num_images / self.seconds

    def to_bpd(self, nats: np.ndarray) -> np.ndarray:
        """Per-image nats -> bits per dim (positive for a log-likelihood's negative)."""
        return np.asarray(nats) / (self.num_dims * LN2)

    def bpd(self, k: int | None = None) -> tuple[float, float]:
        """(mean, standard error) of bits/dim: the ELBO's for k=None, else the IWAE-k bound's."""
        return mean_se(self.to_bpd(-(self.elbo if k is None else self.iwae[k])))


@torch.no_grad()
def evaluate_bounds(images: torch.Tensor, encode: Encode, log_px_given_z: LogPxGivenZ,
                    k_values: Sequence[int] = (1,), batch_size: int = 64, device: torch.device | str = "cpu",
                    max_decode: int = 1024, seed: int = 0, progress: bool = False) -> LikelihoodResult:
    """ELBO and IWAE-K bounds of any encoder / decoder likelihood pair, batched over images and samples.

    `images`: a torch tensor (N, ...), uint8 (scaled by 1/255) or floating (used as is). `encode(x)` gives the
    diagonal Gaussian q(z|x) as (mu, logvar); the prior is N(0, I). One set of K_max = max(k_values) samples
    per image serves every K: IWAE-K averages the K_max // K disjoint groups of K samples (the same expectation
    as one group, less noise), so K = 1 is a Monte Carlo ELBO. At most `max_decode` samples are decoded at once.
    """
    check_images(images, batch_size)
    ks = _check_k_values(k_values)
    k_max, device = max(ks), torch.device(device)
    gen = torch.Generator(device=device).manual_seed(seed)

    def batch_bounds(x: torch.Tensor) -> tuple[torch.Tensor, ...]:  # distortion, rate, IWAE-k for each k
        mu, logvar = (t.float() for t in encode(x))
        log_w, log_px = _log_weights(x, mu, logvar, log_px_given_z, k_max, max(1, max_decode // len(x)), gen)
        iwae = [(torch.logsumexp(log_w[:, : k_max // k * k].view(len(x), -1, k), -1) - math.log(k)).mean(1)
                for k in ks]
        return -log_px.mean(1), kl_standard_normal(mu, logvar), *iwae

    start = time.perf_counter()
    with float32(device):
        distortion, rate, *iwae = map_batches(batch_bounds, images, batch_size, device,
                                              f"IWAE K={k_max}" if progress else None)
    return LikelihoodResult(
        num_dims=math.prod(images.shape[1:]), k_max=k_max, distortion=to_numpy(distortion), rate=to_numpy(rate),
        iwae={k: to_numpy(v) for k, v in zip(ks, iwae, strict=True)},
        seconds=time.perf_counter() - start,  # after the copies to the host, which wait for the device
    )


def evaluate_vae(model: torch.nn.Module, images: torch.Tensor, log_sigma: torch.Tensor, k_values: Sequence[int] = (1,),
                 batch_size: int = 64, max_decode: int = 1024, seed: int = 0,
                 progress: bool = False) -> LikelihoodResult:
    """Discrete (8-bit) ELBO and IWAE bounds of a VAE on a uint8 image tensor (N, C, H, W); log_sigma from
    `resolve_log_sigma`."""
    check_images(images, batch_size)
    if images.dtype != torch.uint8:
        raise ConfigError(f"bits/dim need 8-bit images: pass the uint8 tensor, not {images.dtype}.")
    return evaluate_bounds(images, model.encode, discrete_decoder(model, log_sigma), k_values, batch_size,
                           device_of(model), max_decode, seed, progress)


def _log_weights(x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, log_px_given_z: LogPxGivenZ,
                 k: int, k_chunk: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(log w, log p(x|z)), each (B, k): samples drawn and decoded k_chunk per image at a time."""
    log_w, log_px = [], []
    for k0 in range(0, k, k_chunk):
        eps = torch.randn(mu.shape[0], min(k_chunk, k - k0), mu.shape[1], generator=gen, device=mu.device)
        z = reparameterize(mu[:, None], logvar[:, None], eps)  # (B, S, d)
        lp = log_px_given_z(x, z).float()
        # log p(z) - log q(z|x): the 2*pi constants cancel, and q is evaluated at its own noise eps
        log_pz_minus_qz = 0.5 * (eps.pow(2) - z.pow(2)).sum(-1) + 0.5 * logvar.sum(-1, keepdim=True)
        log_w.append(lp + log_pz_minus_qz)
        log_px.append(lp)
    return torch.cat(log_w, 1), torch.cat(log_px, 1)


def _check_k_values(k_values: Sequence[int]) -> list[int]:
    ks = list(k_values) if isinstance(k_values, (list, tuple, range, np.ndarray)) else []
    if not ks or any(not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1 for k in ks):
        raise ConfigError(f"K values must be a list of integers >= 1 (K = 1 is the ELBO), got {k_values!r}.")
    return sorted({int(k) for k in ks})
