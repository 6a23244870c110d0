"""How visible each rendered attribute of the synthetic faces is at 64x64: the mean absolute pixel change (0-255)
and the fraction of pixels changed by more than 8 levels when only that label flips.

The renderer takes all its random draws up front, so the same identity and rng state with one label flipped
give the same picture but for that attribute. An attribute that changes a fraction of a grey level on average
cannot be learned by a 64x64 classifier in a few CPU epochs (benchmarks/RESULTS.md).

    python benchmarks/attribute_visibility.py --faces 40
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image

from vaelib.data.attributes import CROP_BOX
from vaelib.data.people import HAIR_COLOURS, RENDERED_ATTRIBUTES, sample_attributes, sample_identity
from vaelib.data.render import render_face


def crop64(img: Image.Image) -> np.ndarray:
    """The loader's crop and resize (vaelib.data.celeba), as float pixels."""
    return np.asarray(img.crop(CROP_BOX).resize((64, 64), Image.Resampling.BICUBIC), dtype=np.float64)


def flipped_pair(name: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    identity = sample_identity(rng)
    labels = sample_attributes(identity, rng)
    state = rng.bit_generator.state
    flipped = dict(labels, **{name: not labels[name]})
    if name in HAIR_COLOURS and flipped[name]:  # at most one hair colour
        flipped.update({other: False for other in HAIR_COLOURS if other != name})
    before = crop64(render_face(identity, labels, rng))
    rng.bit_generator.state = state
    return before, crop64(render_face(identity, flipped, rng))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--faces", type=int, default=40, help="random faces per attribute")
    a = p.parse_args()
    rows = []
    for name in RENDERED_ATTRIBUTES:
        changes = [np.abs(np.subtract(*flipped_pair(name, seed))).mean(-1) for seed in range(a.faces)]
        rows.append((name, np.mean([c.mean() for c in changes]), np.mean([(c > 8).mean() for c in changes])))
    print(f"{'attribute':22s} {'mean |change|':>13s} {'pixels > 8':>10s}")
    for name, mean, frac in sorted(rows, key=lambda r: r[1]):
        print(f"{name:22s} {mean:13.2f} {frac:10.3f}")


if __name__ == "__main__":
    main()
