"""Image grids (PNG, via torchvision), their layouts, and saving figures (PDF plots) into the run folder."""

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


def with_originals(originals: torch.Tensor, edits: torch.Tensor) -> torch.Tensor:
    """Prepend each row of an edit grid (N * C images, row-major) with its original: N * (C + 1) images."""
    n = originals.shape[0]
    return torch.cat([originals[:, None], edits.view(n, -1, *edits.shape[1:])], 1).flatten(0, 1)


def table_grid(top: torch.Tensor, left: torch.Tensor, body: torch.Tensor) -> torch.Tensor:
    """A grid with a header row (`top`, A images) and a header column (`left`, S images) around `body`
    (S * A images, row-major), and a white corner: (S + 1) * (A + 1) images."""
    corner = torch.ones_like(top[:1])
    rows = [torch.cat([corner, top])]
    rows += [torch.cat([left[i:i + 1], body[i * len(top):(i + 1) * len(top)]]) for i in range(len(left))]
    return torch.cat(rows)
