"""The README's picture of a run (`figures.overview`), written from the run folder's VAE and data."""

from __future__ import annotations

from pathlib import Path

from ..figures.grids import save_grid
from ..figures.overview import EDIT_DISTANCE, overview_grid
from ..run import RunContext
from .vae import load_vae


def write_overview(ctx: RunContext, target: Path, attribute: str = "Eyeglasses", distance: float = EDIT_DISTANCE
                   ) -> Path:
    grid = overview_grid(load_vae(ctx), ctx.load_data(), attribute, distance, seed=ctx.seed)
    return save_grid(grid, Path(target), nrow=8)
