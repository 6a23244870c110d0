"""Slider panels for the editing notebooks: pick an edit, drag its strength, see original and edit side by side.

The update step is the pure `LatentExplorer.render(strength, edit) -> PNG bytes`, testable without a
browser; the panel only writes those bytes into an `ipywidgets.Image`, so nothing is re-plotted and the
picture does not flicker. Sliders use continuous_update=False: one decode per release, not per pixel moved.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import ipywidgets as widgets
import torch
from PIL import Image

from ..editing.directions import Edit
from ..models.vae import VAE


def to_png(image: torch.Tensor, size: int = 192) -> bytes:
    """(3, H, W) on [0, 1] -> PNG bytes, upscaled with nearest neighbour (true pixels, no blur)."""
    arr = image.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    buf = io.BytesIO()
    Image.fromarray(arr).resize((size, size), Image.Resampling.NEAREST).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class LatentExplorer:
    """Edits of one latent z0 (D,) chosen by name; `render` decodes one edit at one strength."""

    def __init__(self, vae: VAE, z0: torch.Tensor, edits: Mapping[str, Edit], strength_range=(-3.0, 3.0),
                 step: float = 0.1, default: float = 0.0, size: int = 192, label: str = "edit"):
        if not edits:
            raise ValueError("LatentExplorer needs at least one edit.")
        self.vae, self.edits, self.size, self.label = vae, dict(edits), size, label
        self.z0 = z0.detach().reshape(1, -1).to(next(vae.parameters()).device)
        self.strength_range, self.step, self.default = strength_range, step, default

    @torch.no_grad()
    def render(self, strength: float, edit: str | None = None) -> bytes:
        """PNG of the decoded edit `edit` (default: the first) at `strength`."""
        fn = self.edits[edit if edit is not None else next(iter(self.edits))]
        return self._decode_png(fn(self.z0, float(strength)))

    @torch.no_grad()
    def original(self) -> bytes:
        """PNG of the unedited decode of z0 (the VAE's reconstruction)."""
        return self._decode_png(self.z0)

    def _decode_png(self, z: torch.Tensor) -> bytes:
        # One 64x64 decode is too small to split across threads; with other work on the cores, waiting for every
        # thread costs far more than the decode (benchmarks/slider_latency.py measures it).
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return to_png(self.vae.decode(z)[0], self.size)
        finally:
            torch.set_num_threads(threads)

    def widget(self) -> widgets.Widget:
        """Dropdown (edit), FloatSlider (strength), Reset button, and the two faces side by side."""
        lo, hi = self.strength_range
        choice = widgets.Dropdown(options=list(self.edits), description=self.label,
                                  layout=widgets.Layout(width="320px"))
        slider = widgets.FloatSlider(value=self.default, min=lo, max=hi, step=self.step, description="strength",
                                     continuous_update=False, readout_format=".1f",
                                     layout=widgets.Layout(width="420px"))
        reset = widgets.Button(description="Reset", icon="undo")
        px = f"{self.size}px"
        before = widgets.Image(value=self.original(), format="png", width=px, height=px)
        after = widgets.Image(value=self.render(slider.value, choice.value), format="png", width=px, height=px)

        def update(_change=None) -> None:
            after.value = self.render(slider.value, choice.value)

        def on_reset(_button) -> None:
            slider.value = self.default  # the slider's change event redraws (nothing to redraw if unchanged)

        slider.observe(update, names="value")
        choice.observe(update, names="value")
        reset.on_click(on_reset)
        faces = widgets.HBox([widgets.VBox([widgets.Label("original"), before]),
                              widgets.VBox([widgets.Label("edited"), after])])
        return widgets.VBox([widgets.HBox([choice, slider, reset]), faces])
