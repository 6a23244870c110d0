"""The README's picture of a run: test faces, their reconstructions and one attribute edit, as one PNG.

`make demo` writes it to docs/demo.png from the demo run, so the README shows what the current code produces.
The edit is the simplest attribute direction (difference of class means of training latents, notebook 03)
moved by the distance notebook 03 scored its edits at in that run.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .data.pixels import images_tensor, to_float
from .editing.directions import latent_scale, mean_difference
from .editing.latents import decode, encode, encode_split
from .run import RunContext
from .train import load_vae
from .viz import save_grid

EDIT_DISTANCE = 3.0  # latent-scale units: notebook 03's default EVAL_DISTANCE


def overview_grid(ctx: RunContext, attribute: str = "Eyeglasses", distance: float = EDIT_DISTANCE, n: int = 8,
                  encoded: int = 2000) -> torch.Tensor:
    """Rows: n test faces, their reconstructions (z = mu), and the same latents moved towards `attribute`."""
    vae, data = load_vae(ctx), ctx.load_data()
    train_idx, mu = encode_split(vae, data, "train", encoded, ctx.seed)
    u = mean_difference(mu, data.attributes[train_idx, data.attr_index(attribute)], attribute)
    test = data.split("test")[:n]
    x = to_float(images_tensor(data, test))
    z = encode(vae, images_tensor(data, test))
    return torch.cat([x, decode(vae, z), decode(vae, z + distance * latent_scale(mu) * u)])


def write_overview(ctx: RunContext, target: Path, attribute: str = "Eyeglasses", distance: float = EDIT_DISTANCE
                   ) -> Path:
    return save_grid(overview_grid(ctx, attribute, distance), Path(target), nrow=8)
