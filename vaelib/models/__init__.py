"""Models, each beside its config: the VAE (`vae`, built from `blocks`) and the attribute classifier
(`classifier`)."""

from .vae import VAE, ModelConfig, count_parameters

__all__ = ["VAE", "ModelConfig", "count_parameters"]
