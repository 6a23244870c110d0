"""Slider panel: the pure render step (PNG bytes) and the widget wiring, without a browser."""

from __future__ import annotations

import io

import ipywidgets as widgets
import numpy as np
import pytest
import torch
from PIL import Image

from vaelib.config import get_profile
from vaelib.editing.directions import Direction, axis
from vaelib.figures.widgets import LatentExplorer, to_png
from vaelib.models import VAE


@pytest.fixture(scope="module")
def explorer() -> LatentExplorer:
    torch.manual_seed(0)
    vae = VAE(get_profile("smoke").model).eval()
    d = vae.cfg.latent_dim
    z0 = torch.randn(d, generator=torch.Generator().manual_seed(1))
    edits = {"dim 0": Direction(axis(0, d)), "dim 1 down": Direction(axis(1, d, -1.0))}
    return LatentExplorer(vae, z0, edits, strength_range=(-5.0, 5.0))


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def test_render_returns_png_that_changes_with_strength(explorer):
    png = explorer.render(0.0)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert _pixels(png).shape == (192, 192, 3)
    assert explorer.render(0.0) == png == explorer.original()  # deterministic; strength 0 is the reconstruction
    assert explorer.render(4.0) != png
    assert explorer.render(4.0, "dim 1 down") != explorer.render(4.0, "dim 0")


def test_to_png_upscales_with_nearest_neighbour():
    img = torch.zeros(3, 2, 2)
    img[0, 0, 0] = 1.0  # one red pixel top-left
    px = _pixels(to_png(img, size=8))
    assert (px[:4, :4] == [255, 0, 0]).all() and (px[4:, :] == 0).all() and (px[:, 4:] == 0).all()


def test_panel_updates_the_image_in_place(explorer):
    panel = explorer.widget()
    (choice, slider, reset), faces = panel.children[0].children, panel.children[1]
    before, after = faces.children[0].children[1], faces.children[1].children[1]
    assert isinstance(slider, widgets.FloatSlider) and slider.continuous_update is False
    assert isinstance(choice, widgets.Dropdown) and list(choice.options) == ["dim 0", "dim 1 down"]
    assert after.value == before.value == explorer.original()
    image_widget = after
    slider.value = 3.0
    assert after is image_widget and after.value == explorer.render(3.0, "dim 0")
    choice.value = "dim 1 down"
    assert after.value == explorer.render(3.0, "dim 1 down")
    reset.click()
    assert slider.value == 0.0 and after.value == explorer.original()
