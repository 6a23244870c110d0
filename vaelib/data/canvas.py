"""Where a synthetic face is drawn: the 178x218 frame, the pose transform, the painter that draws shapes given in
face coordinates, and one image's colours and geometry (`face_layout`) derived from its identity and labels."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from .people import HAIR_COLOURS, RGB, Identity, mix, shade

WIDTH, HEIGHT = 178, 218  # aligned CelebA image size
SS = 2  # supersampling factor: draw at 2x, then box-downsample = antialiased edges at low cost
CX, EY = 89.0, 112.0  # face centre x and eye line y in the 178x218 frame (as in aligned CelebA)


# Dark and light end of each hair class; an identity's `hair_shade` picks a point in between.
# "other" is auburn/red: CelebA leaves all four hair colours at -1 for such hair.
_HAIR_RGB = {
    "Black_Hair": ((22, 18, 18), (52, 40, 34)),
    "Brown_Hair": ((70, 45, 28), (125, 85, 52)),
    "Blond_Hair": ((190, 150, 90), (238, 208, 150)),
    "Gray_Hair": ((140, 138, 135), (215, 212, 205)),
    "other": ((120, 50, 28), (170, 88, 48)),
}
_PALE = (250, 232, 222)

CIRCLE = np.stack([np.cos(np.linspace(0, 2 * np.pi, 36, endpoint=False)),
                    np.sin(np.linspace(0, 2 * np.pi, 36, endpoint=False))], axis=1)
_SMALL_CIRCLE = CIRCLE[::3]  # 12 vertices are enough below ~5 px radius, and cheaper to fill
U = np.linspace(-1.0, 1.0, 17)  # parameter along mouth, brows and hairlines (-1 left .. 1 right)


class Painter:
    """Draws shapes given in 178x218 face coordinates through the pose transform onto the 2x canvas."""

    def __init__(self, canvas: Image.Image, matrix: np.ndarray, scale: float, lut: np.ndarray) -> None:
        self.draw = ImageDraw.Draw(canvas)
        self.lin, self.off = matrix[:, :2].T.copy(), matrix[:, 2].copy()
        self.px = scale  # canvas pixels per face pixel, for line widths
        self.lut = lut.tolist()  # per-channel colour map (3 x 256): lists index faster than arrays

    def tone(self, c: RGB) -> RGB:
        return self.lut[0][c[0]], self.lut[1][c[1]], self.lut[2][c[2]]

    def _xy(self, pts: np.ndarray) -> list[float]:
        return (pts @ self.lin + self.off).ravel().tolist()

    def poly(self, pts: np.ndarray, fill: RGB) -> None:
        self.draw.polygon(self._xy(pts), fill=self.tone(fill))

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, fill: RGB) -> None:
        self.poly((_SMALL_CIRCLE if max(rx, ry) < 5 else CIRCLE) * (rx, ry) + (cx, cy), fill)

    def line(self, pts: np.ndarray, fill: RGB, width: float) -> None:
        self.draw.line(self._xy(pts), fill=self.tone(fill), width=max(1, int(round(width * self.px))),
                       joint="curve")


def arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 24) -> np.ndarray:
    """Points on an ellipse from angle a0 to a1 (radians, image convention: y grows downwards)."""
    t = np.linspace(a0, a1, n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def curve(x0: float, half: float, ys: np.ndarray) -> np.ndarray:
    """Points (x0 + half*u, ys) for u along U: a horizontal curve described by its heights."""
    return np.stack([x0 + half * U, ys], axis=1)


def face_outline(fw: float, top: float, chin: float, jaw: float) -> np.ndarray:
    """Egg-shaped head: an ellipse above the cheek line, a superellipse (square when jaw=1) below it."""
    t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    n = 2.0 + 2.2 * jaw
    lower = s > 0
    x = np.where(lower, np.sign(c) * np.abs(c) ** (2 / n), c) * fw
    y = np.where(lower, np.abs(s) ** (2 / n) * chin, s * top)
    x *= np.where(lower, 1 - (0.3 - 0.15 * jaw) * (y / chin) ** 2, 1.0)  # narrow towards the chin
    return np.stack([CX + x, EY + 4 + y], axis=1)


def pose_matrix(angle_deg: float, scale: float, dx: float, dy: float) -> np.ndarray:
    """2x3 affine map face coords -> canvas: rotate/scale about the face centre, shift, then supersample."""
    a = math.radians(angle_deg)
    c, s = math.cos(a) * scale, math.sin(a) * scale
    centre = np.array([CX, EY + 10])
    lin = np.array([[c, -s], [s, c]])
    off = centre + (dx, dy) - lin @ centre
    return SS * np.concatenate([lin, off[:, None]], axis=1)


@dataclass
class Face:
    """Colours and geometry of one image, derived from the identity and the image's labels."""

    skin: RGB
    skin_dark: RGB
    skin_shadow: RGB
    hair: RGB
    beard: RGB
    brow: RGB
    fw: float  # face half-width
    chin: float  # eye line to chin
    jaw: float
    nl: float  # nose length
    nw: float  # nose half-width
    my: float  # mouth line y
    mw: float  # mouth half-width
    wave: float  # amplitude of hair waves
    side: float  # half-width of the hair mass
    top: float = 72.0  # eye line (+4) to the top of the skull

    @property
    def chin_y(self) -> float:
        return EY + 4 + self.chin


def face_layout(identity: Identity, a: dict[str, bool]) -> Face:
    skin = mix(identity.skin, _PALE, 0.6) if a["Pale_Skin"] else identity.skin
    if not a["Young"]:  # older skin is a little greyer: age lines alone are a few pixels at 64x64
        grey = round(sum(skin) / 3)
        skin = mix(skin, (grey, grey, grey), 0.25)
    chosen = [name for name in HAIR_COLOURS if a[name]]
    hair = mix(*_HAIR_RGB[chosen[0] if chosen else "other"], identity.hair_shade)
    # facial hair keeps the person's own colour even under a bald or dyed head; blond is darkened so that
    # it does not vanish on light skin
    beard = mix(mix(*_HAIR_RGB[identity.hair], identity.hair_shade), (45, 32, 26),
                 0.6 if identity.hair == "Blond_Hair" else 0.35)
    brow = shade(beard, 0.9) if a["Bald"] else shade(hair, 0.6 if a["Blond_Hair"] else 0.7)
    male = a["Male"]
    fw = identity.face_w + (2.5 if male else 0.0) + (5.0 if a["Chubby"] else 0.0)
    jaw = (0.55 + 0.45 * identity.jaw if male else 0.3 * identity.jaw) * (0.6 if a["Chubby"] else 1.0)
    nl = identity.nose_len + (5.0 if a["Big_Nose"] else 0.0)
    return Face(
        skin=skin, skin_dark=shade(skin, 0.88), skin_shadow=shade(skin, 0.78), hair=hair, beard=beard,
        brow=brow, fw=fw, chin=identity.chin + (3.0 if male else 0.0), jaw=jaw, nl=nl,
        nw=identity.nose_w + (4.5 if a["Big_Nose"] else 0.0), my=EY + nl + 13.0,
        mw=identity.mouth_w + (2.5 if a["Smiling"] else 0.0) + (4.0 if a["Big_Lips"] else 0.0),
        wave=0.0 if a["Straight_Hair"] else 7.0 if a["Wavy_Hair"] else 1.5, side=fw + identity.hair_volume)
