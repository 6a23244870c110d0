"""Training losses, each returned per image (shape (B,)) so callers choose the reduction.

Pixels are on [0, 1]. Reconstruction is either the assignment's summed squared error or the Gaussian NLL with
the model's learned sigma (continuous density on [0, 1]; vaelib.likelihood turns it into honest bits/dim).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError

LOG_2PI = math.log(2 * math.pi)


def mse_sum(recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Squared error summed over all pixel values of each image (the assignment's reconstruction loss)."""
    return (recon - x).pow(2).flatten(1).sum(1)


def gaussian_log_density(x: torch.Tensor, mean: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """Elementwise continuous log N(x; mean, sigma^2) in nats (a density: not a probability of 8-bit data)."""
    return -0.5 * ((x - mean) * torch.exp(-log_sigma)) ** 2 - log_sigma - 0.5 * LOG_2PI


def gaussian_nll(recon: torch.Tensor, x: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """-log N(x; recon, sigma^2) summed over pixel values, in nats; log_sigma broadcasts to x."""
    return -gaussian_log_density(x, recon, log_sigma).flatten(1).sum(1)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps, a sample of N(mu, exp(logvar)) from standard normal noise `eps` (drawn by the caller,
    so a seeded generator or a data-parallel slice decides it)."""
    return mu + eps.to(mu.dtype) * torch.exp(0.5 * logvar)


def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) in closed form, summed over latent dimensions."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)


def kl_beta(epoch: int, warmup_epochs: int) -> float:
    """Linear KL warm-up: beta = min(1, epoch / warmup); epoch counts from 0, warmup 0 means beta = 1."""
    return 1.0 if warmup_epochs <= 0 else min(1.0, epoch / warmup_epochs)


def reconstruction_loss(model, recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The per-image reconstruction term the model was configured with."""
    log_sigma = model.pixel_log_sigma()
    return mse_sum(recon, x) if log_sigma is None else gaussian_nll(recon, x, log_sigma)


class VGGPerceptual(nn.Module):
    """Feature-space L2 between images on VGG16 relu1_2..relu4_3 (Johnson et al. 2016), per image.

    Weights never download here: they come from a local file (a torchvision `vgg16-397923af.pth` state dict,
    or just its `features.*` entries) given by path, or from torchvision's cache under $TORCH_HOME.
    """

    LAYERS = (3, 8, 15, 22)  # indices of relu1_2, relu2_2, relu3_3, relu4_3 in vgg16().features

    def __init__(self, weights_path: str | None = None):
        super().__init__()
        from torchvision.models import vgg16

        path = Path(weights_path) if weights_path else _torchvision_cached_vgg16()
        if path is None or not path.is_file():
            raise ConfigError(
                f"perceptual loss needs VGG16 weights but {path or 'torchvision cache'} has none: copy "
                "vgg16-397923af.pth there (or pass vgg_weights=PATH), or set perceptual_weight=0."
            )
        features = vgg16().features
        state = torch.load(path, map_location="cpu", weights_only=True)
        try:  # only the convolutions are used: the classifier's 120M weights need not be in the file
            features.load_state_dict({k.removeprefix("features."): v for k, v in state.items()
                                      if k.startswith("features.")})
        except (RuntimeError, AttributeError) as e:
            raise ConfigError(f"{path} is not a torchvision VGG16 state dict ({type(e).__name__}); use "
                              "vgg16-397923af.pth from torchvision, or set perceptual_weight=0.") from None
        self.features = features[: self.LAYERS[-1] + 1].eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        h = torch.cat([recon, x])
        h = (h - self.mean) / self.std
        loss = recon.new_zeros(recon.shape[0])
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self.LAYERS:
                a, b = h.chunk(2)
                loss = loss + F.mse_loss(a, b, reduction="none").flatten(1).mean(1)
        return loss


def _torchvision_cached_vgg16() -> Path | None:
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    found = sorted(hub.glob("vgg16-*.pth")) if hub.is_dir() else []
    return found[0] if found else hub / "vgg16-397923af.pth"
