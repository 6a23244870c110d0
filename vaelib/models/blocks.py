"""Building blocks shared by the encoder and decoder: conv + GroupNorm(32) + SiLU, squeeze-excitation,
a residual bottleneck with LayerScale, strided-conv downsampling and bilinear+conv upsampling."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import SqueezeExcitation


class ConvNormAct(nn.Sequential):
    """conv -> GroupNorm -> SiLU (activation optional for the last conv of a residual branch)."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1, act: bool = True, groups: int = 32):
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=False),
            nn.GroupNorm(groups, c_out),
            nn.SiLU() if act else nn.Identity(),
        )


def squeeze_excitation(channels: int, ratio: int = 16) -> SqueezeExcitation:
    """Channel gating from globally pooled features (Hu et al. 2018): torchvision's block with SiLU inside."""
    return SqueezeExcitation(channels, max(8, channels // ratio), activation=nn.SiLU)


class LayerScale(nn.Module):
    """Per-channel learnable scale of a residual branch, initialised small so each block starts near the
    identity (Touvron et al. 2021); keeps deep VAEs stable early in training."""

    def __init__(self, channels: int, init: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((1, channels, 1, 1), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class BottleneckBlock(nn.Module):
    """x + LayerScale(SE(1x1 reduce -> 3x3 -> 1x1 expand)); width is unchanged."""

    def __init__(self, channels: int, bottleneck_ratio: int, se_ratio: int, layer_scale_init: float, groups: int):
        super().__init__()
        inner = channels // bottleneck_ratio
        self.branch = nn.Sequential(
            ConvNormAct(channels, inner, kernel=1, groups=groups),
            ConvNormAct(inner, inner, kernel=3, groups=groups),
            ConvNormAct(inner, channels, kernel=1, act=False, groups=groups),
            squeeze_excitation(channels, se_ratio),
            LayerScale(channels, layer_scale_init),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.branch(x)


class Downsample(nn.Sequential):
    """Strided 3x3 conv: halves H and W and changes the width (learned, unlike pooling)."""

    def __init__(self, c_in: int, c_out: int, groups: int):
        super().__init__(ConvNormAct(c_in, c_out, kernel=3, stride=2, groups=groups))


class Upsample(nn.Sequential):
    """Bilinear x2 then a 3x3 conv; avoids the checkerboard artefacts of transposed convolutions."""

    def __init__(self, c_in: int, c_out: int, groups: int):
        super().__init__(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), ConvNormAct(c_in, c_out, groups=groups)
        )
