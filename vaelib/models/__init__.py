"""Models, each beside its config: the VAE (`vae`, built from `blocks`) and the attribute classifier
(`classifier`)."""

from .vae import VAE, count_parameters

__all__ = ["VAE", "count_parameters"]
