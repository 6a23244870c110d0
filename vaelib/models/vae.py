"""The convolutional VAE of the assignment: 64x64 RGB -> 256-d Gaussian latent -> 64x64 RGB.

Encoder: stem conv, then one stage per width (bottleneck blocks), stages joined by strided convs
(64x64 -> 32 -> 16 -> 8 for four stages); flatten -> nn.Linear to mu and log-variance.
Decoder: nn.Linear back to the 8x8 map, stages in reverse joined by bilinear+conv upsampling, 1x1 conv to RGB
and a sigmoid, so the reconstruction is the mean of the pixel distribution on [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from ..errors import ConfigError
from ..losses import reparameterize
from .blocks import BottleneckBlock, ConvNormAct, Downsample, Upsample


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the convolutional VAE. The defaults are the assignment's spec (the `full` profile)."""

    image_size: int = 64
    channels: int = 3
    widths: tuple[int, ...] = (64, 128, 256, 512)  # one stage per width; every stage after the first halves H, W
    blocks_per_stage: int = 2
    latent_dim: int = 256
    bottleneck_ratio: int = 2  # inner width of a bottleneck block = width // ratio
    se_ratio: int = 16  # squeeze-excitation reduction
    layer_scale_init: float = 1e-2
    norm_groups: int = 32  # GroupNorm groups (the spec's 32); smaller CPU profiles use narrower layers and 8
    # "mse": the assignment's summed squared error; "gaussian": Gaussian NLL with a learned log-sigma
    # ("global" = one sigma, "channel" = one per RGB channel), needed for honest likelihoods.
    likelihood: str = "gaussian"
    sigma: str = "channel"

    def __post_init__(self) -> None:
        if self.likelihood not in ("mse", "gaussian"):
            raise ConfigError(f"likelihood must be 'mse' or 'gaussian', not {self.likelihood!r}.")
        if self.sigma not in ("global", "channel"):
            raise ConfigError(f"sigma must be 'global' or 'channel', not {self.sigma!r}.")
        g = self.norm_groups
        bad = [w for w in self.widths if w % g or (w // self.bottleneck_ratio) % g]
        if bad:
            raise ConfigError(
                f"widths {bad} do not work with GroupNorm({g}): every width and width/{self.bottleneck_ratio} "
                f"must be a multiple of {g}."
            )
        if self.image_size % 2 ** (len(self.widths) - 1):
            raise ConfigError(f"image_size {self.image_size} must be divisible by 2**(stages-1).")

    @property
    def bottom_size(self) -> int:
        """Spatial size of the last encoder stage (8 for 64x64 input and four stages)."""
        return self.image_size // 2 ** (len(self.widths) - 1)


class VAEOutput(NamedTuple):
    reconstruction: torch.Tensor  # (B, 3, H, W), mean of p(x|z), in [0, 1]
    mu: torch.Tensor  # (B, latent_dim)
    logvar: torch.Tensor  # (B, latent_dim)
    z: torch.Tensor  # (B, latent_dim), the reparameterised sample the reconstruction was decoded from


def _stage(cfg: ModelConfig, width: int) -> list[nn.Module]:
    return [
        BottleneckBlock(width, cfg.bottleneck_ratio, cfg.se_ratio, cfg.layer_scale_init, cfg.norm_groups)
        for _ in range(cfg.blocks_per_stage)
    ]


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        w = cfg.widths
        layers: list[nn.Module] = [ConvNormAct(cfg.channels, w[0], groups=cfg.norm_groups)]
        for i, width in enumerate(w):
            if i > 0:
                layers.append(Downsample(w[i - 1], width, cfg.norm_groups))  # H, W halve
            layers += _stage(cfg, width)
        self.features = nn.Sequential(*layers)
        flat = w[-1] * cfg.bottom_size**2  # 512 * 8 * 8 for the full profile
        self.to_mu = nn.Linear(flat, cfg.latent_dim)
        self.to_logvar = nn.Linear(flat, cfg.latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x).flatten(1)
        return self.to_mu(h), self.to_logvar(h)


class Decoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        w = cfg.widths[::-1]
        self.bottom = (w[0], cfg.bottom_size, cfg.bottom_size)
        self.from_latent = nn.Linear(cfg.latent_dim, math.prod(self.bottom))
        layers: list[nn.Module] = []
        for i, width in enumerate(w):
            if i > 0:
                layers.append(Upsample(w[i - 1], width, cfg.norm_groups))  # H, W double
            layers += _stage(cfg, width)
        layers.append(nn.Conv2d(w[-1], cfg.channels, 1))
        self.features = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.from_latent(z).view(-1, *self.bottom)
        return torch.sigmoid(self.features(h))


class VAE(nn.Module):
    """`encode`, `decode`, `reparameterize`, `sample`, `forward` -> VAEOutput.

    With `likelihood="gaussian"` the model owns `log_sigma` (one value, or one per channel), the learned
    standard deviation of p(x|z) on the [0, 1] pixel scale. With "mse" it has none (see vaelib.likelihood
    for how an MSE model's sigma is fitted for evaluation).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        if cfg.likelihood == "gaussian":
            n = 1 if cfg.sigma == "global" else cfg.channels
            # start at sigma = 0.1 (a few grey levels too wide), the model sharpens it as it learns
            self.log_sigma = nn.Parameter(torch.full((n,), math.log(0.1)))
        else:
            self.log_sigma = None

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        return reparameterize(mu, logvar, torch.randn_like(mu) if noise is None else noise)

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> VAEOutput:
        """`noise`: the standard normal draw of the reparameterisation, when the caller draws it (a data-parallel
        rank takes its rows of the global batch's draw); None draws it here."""
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar, noise)
        return VAEOutput(self.decode(z), mu, logvar, z)

    def pixel_log_sigma(self) -> torch.Tensor | None:
        """log sigma broadcastable to (B, C, H, W), or None for an MSE-trained model."""
        if self.log_sigma is None:
            return None
        return self.log_sigma.view(1, -1, 1, 1)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
