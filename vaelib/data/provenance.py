"""What a dataset folder says about where its images come from: the synthetic generator's marker file.

The generator writes `synthetic.json` last into the folder it fills; the loader reads it back, so a dataset
knows which of its labels its pixels actually show (`CelebA64.rendered_attributes`) without being told which
source a run's profile named.
"""

from __future__ import annotations

import json
from pathlib import Path

from .people import RENDERED_ATTRIBUTES

MARKER = "synthetic.json"  # written last: a folder without it holds a partial (or foreign) set
GENERATOR = "vaelib.data.synthetic"


def read_marker(folder: Path) -> dict:
    """The generator's marker in `folder`, or {} when there is none (or it is unreadable)."""
    try:
        marker = json.loads((Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return {}
    return marker if isinstance(marker, dict) else {}


def rendered_attributes(folder: Path) -> frozenset[str] | None:
    """The attributes the images in `folder` are drawn with, or None for photographs (real CelebA), whose every
    label describes what the photo shows."""
    marker = read_marker(folder)
    if marker.get("generator") != GENERATOR:
        return None
    # Markers written before the list was recorded: those sets render what the generator renders today (the list
    # has not changed since the first generator version), so they load without being regenerated.
    return frozenset(marker.get("rendered_attributes", RENDERED_ATTRIBUTES))
