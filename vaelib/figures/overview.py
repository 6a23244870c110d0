"""The README's picture of a run: test faces, their reconstructions and one attribute edit, as one PNG.

`make demo` writes it to docs/demo.png from the demo run (`runfolder.overview`), so the README shows what the
current code produces. The edit is the simplest attribute direction (difference of class means of training
latents, notebook 03) moved by the distance notebook 03 scored its edits at in that run.
"""

from __future__ import annotations

import torch

from ..data.pixels import images_tensor, to_float
from ..editing.directions import latent_scale, mean_difference
from ..editing.latents import decode, encode, encode_split
from ..models.vae import VAE

EDIT_DISTANCE = 3.0  # latent-scale units: notebook 03's default EVAL_DISTANCE


def overview_grid(vae: VAE, data, attribute: str = "Eyeglasses", distance: float = EDIT_DISTANCE, n: int = 8,
                  encoded: int = 2000, seed: int = 0) -> torch.Tensor:
    """Rows: n test faces, their reconstructions (z = mu), and the same latents moved towards `attribute`."""
    train_idx, mu = encode_split(vae, data, "train", encoded, seed)
    u = mean_difference(mu, data.attributes[train_idx, data.attr_index(attribute)], attribute)
    test = data.split("test")[:n]
    x = to_float(images_tensor(data, test))
    z = encode(vae, images_tensor(data, test))
    return torch.cat([x, decode(vae, z), decode(vae, z + distance * latent_scale(mu) * u)])

