"""Models: the VAE and its blocks (the attribute classifier lives in `classifier.py`)."""

from .blocks import BottleneckBlock, ConvNormAct, Downsample, LayerScale, Upsample, squeeze_excitation
from .vae import VAE, Decoder, Encoder, VAEOutput, count_parameters

__all__ = [
    "VAE",
    "BottleneckBlock",
    "ConvNormAct",
    "Decoder",
    "Downsample",
    "Encoder",
    "LayerScale",
    "Upsample",
    "VAEOutput",
    "count_parameters",
    "squeeze_excitation",
]
