"""Figures: image grids (PNG, via torchvision) and plots (PDF), saved into the run folder and shown inline."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torchvision.utils import make_grid, save_image


def save_grid(images: torch.Tensor, path: Path, nrow: int = 8, padding: int = 2) -> Path:
    """Save a (N, 3, H, W) batch on [0, 1] as one PNG grid (lossless, so the report shows true pixels)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(images.detach().float().clamp(0, 1).cpu(), path, nrow=nrow, padding=padding, pad_value=1.0)
    return path


def grid_figure(images: torch.Tensor, nrow: int = 8, title: str | None = None, row_labels=None,
                col_labels=None, scale: float = 0.9):
    """A matplotlib figure of an image grid, with optional row/column labels (for sweeps)."""
    grid = make_grid(images.detach().float().clamp(0, 1).cpu(), nrow=nrow, padding=2, pad_value=1.0)
    ncol = nrow
    nrows = (images.shape[0] + nrow - 1) // nrow
    fig, ax = plt.subplots(figsize=(scale * ncol + 1.2, scale * nrows + 0.6))
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    h, w = images.shape[-2:]
    if col_labels is not None:
        ax.set_xticks([2 + (w + 2) * i + w / 2 for i in range(len(col_labels))], col_labels, fontsize=8)
    else:
        ax.set_xticks([])
    if row_labels is not None:
        ax.set_yticks([2 + (h + 2) * i + h / 2 for i in range(len(row_labels))], row_labels, fontsize=8)
    else:
        ax.set_yticks([])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def savefig(fig, path: Path) -> Path:
    """Save a matplotlib figure (PDF for plots keeps them sharp in the report; PNG for image grids)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight", dpi=150)
    return path
