"""Models: the VAE and its blocks (the attribute classifier lives in `classifier.py`)."""

from .blocks import BottleneckBlock, ConvNormAct, Downsample, LayerScale, SqueezeExcitation, Upsample
from .vae import VAE, Decoder, Encoder, VAEOutput, count_parameters

__all__ = [
    "VAE",
    "BottleneckBlock",
    "ConvNormAct",
    "Decoder",
    "Downsample",
    "Encoder",
    "LayerScale",
    "SqueezeExcitation",
    "Upsample",
    "VAEOutput",
    "count_parameters",
]
