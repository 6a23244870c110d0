"""Synthetic CelebA: cartoon faces written in exactly the official CelebA on-disk layout and file formats.

Why: tests, CI and first runs need a dataset that the real loader (`vaelib.data.celeba`) reads unchanged and
that a VAE can learn in minutes, with attributes that are visible (so classifiers, attribute directions and
label guidance have something to find) and identities that recur (so identity transfer can be checked).

Each identity fixes the face geometry, skin tone, hair colour and style, sex, age and facial hair; each image
of it varies pose, expression, lighting, background and accessories. Everything is drawn with PIL at twice
the size and box-downsampled (antialiasing), then written as a 178x218 JPEG like `img_align_celeba`, with
the face inside the standard 148x148 crop box. Determinism: the plan comes from `seed`, identity k from
(seed, k), image i from (seed, i), so the same (num_images, seed) gives byte-identical files, whichever
number of worker processes writes them.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter
from tqdm.auto import tqdm

from ..atomic import atomic_write_text
from ..errors import ConfigError, DataError
from .attributes import CELEBA_ATTRIBUTES

GENERATOR_VERSION = 2  # bump whenever the output changes, so `ensure_synthetic_celeba` regenerates old sets
# CelebA's average. Fewer images per identity give more identities for the same number of images: attribute
# classifiers then see more people (hair style, face shape are traits of a person) at the same cost.
IMAGES_PER_IDENTITY = 20
MARKER = "synthetic.json"  # written last: a folder without it holds a partial (or foreign) set
_INCOMPLETE = "synthetic.incomplete"  # written first: marks a folder as ours while it is being (re)written
WIDTH, HEIGHT = 178, 218  # aligned CelebA image size
_SS = 2  # supersampling factor: draw at 2x, then box-downsample = antialiased edges at low cost
_JPEG_QUALITY = 75  # the official images use the IJG quality-75 tables with 4:2:0 chroma subsampling
_CX, _EY = 89.0, 112.0  # face centre x and eye line y in the 178x218 frame (as in aligned CelebA)
_STREAM_PLAN, _STREAM_IDENTITY, _STREAM_IMAGE = 0, 1, 2  # independent SeedSequence streams

# Labels that are only sampled (plausibly, correlated with what is drawn), not drawn: too subtle for
# 64x64 cartoons, or (necklace, necktie) below the crop box.
_LABEL_ONLY = {"Attractive", "High_Cheekbones", "Oval_Face", "Pointy_Nose", "Wearing_Necklace",
               "Wearing_Necktie"}
RENDERED_ATTRIBUTES: tuple[str, ...] = tuple(name for name in CELEBA_ATTRIBUTES if name not in _LABEL_ONLY)
HAIR_COLOURS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")  # at most one is set per image

# Dark and light end of each hair class; an identity's `hair_shade` picks a point in between.
# "other" is auburn/red: CelebA leaves all four hair colours at -1 for such hair.
_HAIR_RGB = {
    "Black_Hair": ((22, 18, 18), (52, 40, 34)),
    "Brown_Hair": ((70, 45, 28), (125, 85, 52)),
    "Blond_Hair": ((190, 150, 90), (238, 208, 150)),
    "Gray_Hair": ((140, 138, 135), (215, 212, 205)),
    "other": ((120, 50, 28), (170, 88, 48)),
}
_SKIN_LIGHT, _SKIN_MID, _SKIN_DARK = (244, 210, 186), (208, 160, 122), (115, 76, 55)
_PALE = (250, 232, 222)
_IRIS = ((60, 38, 25), (95, 62, 35), (110, 90, 50), (70, 100, 70), (70, 105, 140), (95, 105, 115))
_LIPSTICK = ((180, 25, 45), (210, 80, 115), (130, 30, 60))

_CIRCLE = np.stack([np.cos(np.linspace(0, 2 * np.pi, 36, endpoint=False)),
                    np.sin(np.linspace(0, 2 * np.pi, 36, endpoint=False))], axis=1)
_SMALL_CIRCLE = _CIRCLE[::3]  # 12 vertices are enough below ~5 px radius, and cheaper to fill
_U = np.linspace(-1.0, 1.0, 17)  # parameter along mouth, brows and hairlines (-1 left .. 1 right)
_BG_BANDS = 24  # background gradient steps: smooth enough after JPEG, cheaper than a pixel gradient
_LEVELS = np.arange(256, dtype=np.float64)[None, :]

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Identity:
    """Traits fixed for every image of one person. Geometry is in pixels of the 178x218 frame.

    Sex-dependent geometry is stored sex-neutral and modulated by the image's `Male` label when drawn,
    so that `Male` is what the pixels show; the booleans are the identity's default labels.
    """

    male: bool
    young: bool
    skin: RGB
    pale: bool
    face_w: float  # half-width of the face at the cheeks
    chin: float  # eye line to chin
    jaw: float  # 0 round .. 1 square (before the Male modulation)
    eye_dx: float  # half the distance between the eyes
    eye_w: float
    eye_h: float
    iris: RGB
    nose_len: float  # eye line to nose tip
    nose_w: float
    mouth_w: float  # half-width of the mouth
    lip_h: float
    brow: float  # eyebrow thickness
    hair: str  # a HAIR_COLOURS entry or "other"; the colour the person has when not bald
    hair_shade: float  # 0 dark .. 1 light within the hair class
    hair_len: float  # 0 cropped .. 1 long, past the shoulders
    hair_volume: float
    wave: str  # "straight" | "wavy" | "neither"
    bald: bool
    receding: bool
    beard: str  # "none" | "goatee" | "full"
    mustache: bool
    sideburns: bool
    bushy: bool
    arched: bool
    big_nose: bool
    big_lips: bool
    chubby: bool
    double_chin: bool
    narrow_eyes: bool
    bags: bool
    oval: bool
    pointy_nose: bool
    attractive: float  # probability of the (unrendered) Attractive label
    p_smile: float
    p_glasses: float
    p_hat: float
    p_bangs: float
    p_stubble: float
    p_lipstick: float
    p_makeup: float
    p_earrings: float


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


def _shade(c: RGB, f: float) -> RGB:
    return (min(255, round(c[0] * f)), min(255, round(c[1] * f)), min(255, round(c[2] * f)))


def sample_identity(rng: np.random.Generator) -> Identity:
    """Draw one person; the probabilities roughly follow CelebA's label frequencies and correlations."""
    male = bool(rng.random() < 0.42)
    young = bool(rng.random() < 0.77)
    tone = rng.random() ** 1.5  # skewed to light skin, as in CelebA
    skin = _mix(_SKIN_LIGHT, _SKIN_MID, tone / 0.6) if tone < 0.6 else _mix(_SKIN_MID, _SKIN_DARK,
                                                                             (tone - 0.6) / 0.4)
    if not young and rng.random() < 0.25:
        hair = "Gray_Hair"
    else:
        p = (0.3, 0.28, 0.25 if not male else 0.07)
        hair = str(rng.choice(["Black_Hair", "Brown_Hair", "Blond_Hair", "other"], p=[*p, 1 - sum(p)]))
    bald = bool(male and rng.random() < (0.2 if not young else 0.04))
    beard = "none" if not male or rng.random() < 0.6 else str(rng.choice(["goatee", "full"], p=[0.4, 0.6]))
    chubby = bool(rng.random() < (0.04 if young else 0.15))
    return Identity(
        male=male, young=young, skin=skin, pale=bool(tone < 0.3 and rng.random() < 0.1),
        face_w=float(rng.uniform(39, 45)), chin=float(rng.uniform(61, 69)), jaw=float(rng.random()),
        eye_dx=float(rng.uniform(17.5, 20.5)), eye_w=float(rng.uniform(7.5, 9.0)),
        eye_h=float(rng.uniform(3.8, 4.8)), iris=_IRIS[int(rng.integers(len(_IRIS)))],
        nose_len=float(rng.uniform(21, 26)), nose_w=float(rng.uniform(6, 7.5)),
        mouth_w=float(rng.uniform(11.5, 14.5)), lip_h=float(rng.uniform(2.6, 3.6)),
        brow=float(rng.uniform(2.2, 3.0)), hair=hair, hair_shade=float(rng.random()),
        hair_len=float(rng.uniform(0.0, 0.3) if male else rng.uniform(0.5, 1.0)),
        hair_volume=float(rng.uniform(4, 11)),
        wave=str(rng.choice(["straight", "wavy", "neither"], p=[0.3, 0.35, 0.35])),
        bald=bald, receding=bool(male and not bald and rng.random() < (0.35 if not young else 0.1)),
        beard=beard, mustache=bool(beard != "none" and rng.random() < 0.3 or male and rng.random() < 0.02),
        sideburns=bool(beard == "full" and rng.random() < 0.7),
        bushy=bool(rng.random() < (0.35 if male else 0.08)), arched=bool(not male and rng.random() < 0.45),
        big_nose=bool(rng.random() < (0.4 if male else 0.12)), big_lips=bool(rng.random() < 0.24),
        chubby=chubby, double_chin=bool(chubby and rng.random() < 0.6),
        narrow_eyes=bool(rng.random() < 0.1), bags=bool(rng.random() < (0.12 if young else 0.5)),
        oval=bool(rng.random() < 0.3), pointy_nose=bool(rng.random() < 0.28),
        attractive=float(rng.uniform(0.1, 0.9)), p_smile=float(rng.uniform(0.25, 0.75)),
        p_glasses=float(0.5 if rng.random() < 0.12 else 0.01),
        p_hat=float(0.45 if rng.random() < 0.1 else 0.01),
        p_bangs=float(0.75 if rng.random() < (0.3 if not male else 0.08) else 0.03),
        p_stubble=float(rng.uniform(0, 0.5)), p_lipstick=float(rng.uniform(0.55, 1.0)),
        p_makeup=float(rng.uniform(0.5, 1.0)), p_earrings=float(rng.uniform(0.0, 0.6)),
    )


def sample_attributes(identity: Identity, rng: np.random.Generator) -> dict[str, bool]:
    """One image's 40 labels: the identity's fixed traits plus per-image expression and accessories.

    The rules hold by construction: at most one hair colour; Bald => no hair colour, Bangs, hair texture or
    receding hairline; any facial hair, 5 o'clock shadow or baldness => Male; makeup/lipstick => not Male;
    Heavy_Makeup => Wearing_Lipstick; Goatee or Sideburns => not No_Beard; Gray_Hair => not Young.
    """
    a = dict.fromkeys(CELEBA_ATTRIBUTES, False)
    male, bald = identity.male, identity.bald
    a["Male"], a["Young"], a["Bald"], a["Pale_Skin"] = male, identity.young, bald, identity.pale
    if not bald:
        if identity.hair in HAIR_COLOURS:
            a[identity.hair] = True
        a["Straight_Hair"] = identity.wave == "straight"
        a["Wavy_Hair"] = identity.wave == "wavy"
        a["Receding_Hairline"] = identity.receding
        a["Bangs"] = bool(rng.random() < identity.p_bangs)
    a["No_Beard"] = identity.beard == "none"
    a["Goatee"] = identity.beard == "goatee"
    a["Mustache"], a["Sideburns"] = identity.mustache, identity.sideburns
    a["5_o_Clock_Shadow"] = bool(male and identity.beard == "none" and rng.random() < identity.p_stubble)
    for name, flag in (("Bushy_Eyebrows", identity.bushy), ("Arched_Eyebrows", identity.arched),
                       ("Big_Nose", identity.big_nose), ("Big_Lips", identity.big_lips),
                       ("Chubby", identity.chubby), ("Double_Chin", identity.double_chin),
                       ("Bags_Under_Eyes", identity.bags), ("Oval_Face", identity.oval),
                       ("Pointy_Nose", identity.pointy_nose)):
        a[name] = flag
    smiling = bool(rng.random() < identity.p_smile)
    a["Smiling"] = smiling
    a["Mouth_Slightly_Open"] = bool(rng.random() < (0.7 if smiling else 0.25))
    a["High_Cheekbones"] = bool(rng.random() < (0.8 if smiling else 0.1))  # CelebA ties it to smiling
    a["Narrow_Eyes"] = identity.narrow_eyes or bool(smiling and rng.random() < 0.1)
    a["Eyeglasses"] = bool(rng.random() < identity.p_glasses)
    a["Wearing_Hat"] = bool(rng.random() < identity.p_hat)
    a["Blurry"] = bool(rng.random() < 0.05)
    draws = rng.random(6)  # fixed count, so later draws do not depend on the sex
    if not male:
        a["Wearing_Lipstick"] = bool(draws[0] < identity.p_lipstick)
        a["Heavy_Makeup"] = a["Wearing_Lipstick"] and bool(draws[1] < identity.p_makeup)
        a["Rosy_Cheeks"] = bool(draws[2] < (0.2 if a["Heavy_Makeup"] else 0.04))
        a["Wearing_Earrings"] = bool(draws[3] < identity.p_earrings)
        a["Wearing_Necklace"] = bool(draws[4] < 0.2)
    else:
        a["Wearing_Necktie"] = bool(draws[4] < 0.15)
    a["Attractive"] = bool(draws[5] < identity.attractive + 0.15 * identity.young + 0.1 * a["Heavy_Makeup"]
                           - 0.1 * a["Blurry"] - 0.15 * male)
    return a


def _side_light(slope: float) -> Image.Image:
    """Multiplier image (255 = 1) that darkens one side of the frame by up to |slope|."""
    ramp = np.linspace(-1.0, 1.0, WIDTH) * np.sign(slope)
    row = np.round(255 * (1 - abs(slope) * (1 + ramp) / 2)).astype(np.uint8)
    return Image.fromarray(np.repeat(np.repeat(row[None, :, None], HEIGHT, 0), 3, 2), "RGB")


_SIDE_SLOPES = np.linspace(-0.35, 0.35, 15)
_SIDE_LIGHT = [_side_light(s) for s in _SIDE_SLOPES]  # 15 light directions, built once (1.7 MB)


class _Painter:
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
        self.poly((_SMALL_CIRCLE if max(rx, ry) < 5 else _CIRCLE) * (rx, ry) + (cx, cy), fill)

    def line(self, pts: np.ndarray, fill: RGB, width: float) -> None:
        self.draw.line(self._xy(pts), fill=self.tone(fill), width=max(1, int(round(width * self.px))),
                       joint="curve")


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 24) -> np.ndarray:
    """Points on an ellipse from angle a0 to a1 (radians, image convention: y grows downwards)."""
    t = np.linspace(a0, a1, n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _curve(x0: float, half: float, ys: np.ndarray) -> np.ndarray:
    """Points (x0 + half*u, ys) for u along _U: a horizontal curve described by its heights."""
    return np.stack([x0 + half * _U, ys], axis=1)


def _face_outline(fw: float, top: float, chin: float, jaw: float) -> np.ndarray:
    """Egg-shaped head: an ellipse above the cheek line, a superellipse (square when jaw=1) below it."""
    t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    n = 2.0 + 2.2 * jaw
    lower = s > 0
    x = np.where(lower, np.sign(c) * np.abs(c) ** (2 / n), c) * fw
    y = np.where(lower, np.abs(s) ** (2 / n) * chin, s * top)
    x *= np.where(lower, 1 - (0.3 - 0.15 * jaw) * (y / chin) ** 2, 1.0)  # narrow towards the chin
    return np.stack([_CX + x, _EY + 4 + y], axis=1)


def _pose_matrix(angle_deg: float, scale: float, dx: float, dy: float) -> np.ndarray:
    """2x3 affine map face coords -> canvas: rotate/scale about the face centre, shift, then supersample."""
    a = math.radians(angle_deg)
    c, s = math.cos(a) * scale, math.sin(a) * scale
    centre = np.array([_CX, _EY + 10])
    lin = np.array([[c, -s], [s, c]])
    off = centre + (dx, dy) - lin @ centre
    return _SS * np.concatenate([lin, off[:, None]], axis=1)


@dataclass
class _Face:
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
        return _EY + 4 + self.chin


def _layout(identity: Identity, a: dict[str, bool]) -> _Face:
    skin = _mix(identity.skin, _PALE, 0.6) if a["Pale_Skin"] else identity.skin
    chosen = [name for name in HAIR_COLOURS if a[name]]
    hair = _mix(*_HAIR_RGB[chosen[0] if chosen else "other"], identity.hair_shade)
    # facial hair keeps the person's own colour even under a bald or dyed head; blond is darkened so that
    # it does not vanish on light skin
    beard = _mix(_mix(*_HAIR_RGB[identity.hair], identity.hair_shade), (45, 32, 26),
                 0.6 if identity.hair == "Blond_Hair" else 0.35)
    brow = _shade(beard, 0.9) if a["Bald"] else _shade(hair, 0.6 if a["Blond_Hair"] else 0.7)
    male = a["Male"]
    fw = identity.face_w + (2.5 if male else 0.0) + (5.0 if a["Chubby"] else 0.0)
    jaw = (0.55 + 0.45 * identity.jaw if male else 0.3 * identity.jaw) * (0.6 if a["Chubby"] else 1.0)
    nl = identity.nose_len + (3.0 if a["Big_Nose"] else 0.0)
    return _Face(
        skin=skin, skin_dark=_shade(skin, 0.88), skin_shadow=_shade(skin, 0.78), hair=hair, beard=beard,
        brow=brow, fw=fw, chin=identity.chin + (3.0 if male else 0.0), jaw=jaw, nl=nl,
        nw=identity.nose_w + (3.0 if a["Big_Nose"] else 0.0), my=_EY + nl + 13.0,
        mw=identity.mouth_w + (2.5 if a["Smiling"] else 0.0) + (3.0 if a["Big_Lips"] else 0.0),
        wave=0.0 if a["Straight_Hair"] else 5.0 if a["Wavy_Hair"] else 1.5, side=fw + identity.hair_volume)


def _draw_background(p: _Painter, r: np.ndarray) -> None:
    """A vertical gradient between two muted colours (CelebA backgrounds are mostly dark or light)."""
    grey = 20 + 215 * r[3]
    top = tuple(int(np.clip(grey + (v - 0.5) * 110, 0, 255)) for v in r[0:3])
    bottom = tuple(int(np.clip(grey * 0.8 + (v - 0.5) * 110, 0, 255)) for v in r[4:7])
    band = HEIGHT * _SS / _BG_BANDS
    for k in range(_BG_BANDS):
        p.draw.rectangle((0, round(k * band), WIDTH * _SS, round((k + 1) * band)),
                         fill=p.tone(_mix(top, bottom, k / (_BG_BANDS - 1))))


def _draw_behind(p: _Painter, f: _Face, identity: Identity, a: dict[str, bool], r: np.ndarray) -> None:
    """Clothes, the hair mass behind the head, neck and ears."""
    p.ellipse(_CX, 250, 100, 52, tuple(int(v) for v in 30 + 190 * r[11:14]))
    if not a["Bald"] and identity.hair_len > 0.4:
        length = _EY + 40 + 90 * identity.hair_len
        ys = np.linspace(_EY - 10, length, 12)
        wiggle = f.wave * np.sin(ys / 7.0 + 6 * r[14])
        spread = f.side + 14 * (ys - ys[0]) / (length - ys[0]) * identity.hair_len
        left = np.stack([_CX - spread + wiggle, ys], axis=1)  # top -> bottom
        right = np.stack([_CX + spread + wiggle, ys], axis=1)[::-1]  # bottom -> top
        # crown: right -> left
        crown = _arc(_CX, _EY + 4, f.side, f.top + identity.hair_volume, -0.15, -np.pi + 0.15)
        p.poly(np.concatenate([left, right, crown]), f.hair)
    neck_w = f.fw * (0.62 if a["Male"] else 0.52)
    p.poly(np.array([[_CX - neck_w, _EY + 30], [_CX - neck_w - 2, 222], [_CX + neck_w + 2, 222],
                     [_CX + neck_w, _EY + 30]]), f.skin_shadow)
    if a["Double_Chin"]:  # a fuller under-chin, lit like the face rather than shadowed like the neck
        p.ellipse(_CX, f.chin_y - 1, f.fw * 0.55, 8, f.skin_dark)
    for sx in (-1, 1):
        p.ellipse(_CX + sx * (f.fw + 1), _EY + 10, 5.5, 12, f.skin_dark)


def _draw_skin(p: _Painter, f: _Face, identity: Identity, a: dict[str, bool]) -> None:
    """Face shape, facial hair on the jaw, cheeks, nose, folds and wrinkles."""
    outline = _face_outline(f.fw, f.top, f.chin, f.jaw)
    p.poly(outline, f.skin_dark)  # a darker rim, then the face inset: cheap rounded shading
    p.poly((outline - (_CX, _EY)) * (0.93, 0.97) + (_CX, _EY - 1), f.skin)
    if a["Double_Chin"]:  # the fold of the second chin
        p.line(_arc(_CX, f.chin_y - 7, f.fw * 0.42, 6, 0.45, np.pi - 0.45, 12), _shade(f.skin, 0.68), 1.5)
    jaw = outline[outline[:, 1] > _EY + 14]  # cheeks, jaw and chin: where beards grow
    jaw = jaw[np.argsort(np.arctan2(jaw[:, 1] - _EY, jaw[:, 0] - _CX))]
    if a["5_o_Clock_Shadow"]:
        p.poly(np.concatenate([jaw, [[_CX, f.my - 8]]]), _mix(f.skin, f.beard, 0.3))
    if not a["No_Beard"] and not a["Goatee"]:  # full beard; the lips are drawn over it later
        inner = np.array([[_CX - f.mw - 3, f.my - 4], [_CX - f.fw * 0.6, _EY + 24],
                          [_CX - f.fw * 0.8, _EY + 14]])
        p.poly(np.concatenate([jaw, inner[::-1] * (-1, 1) + (2 * _CX, 0), inner]), f.beard)
    if a["Rosy_Cheeks"]:
        for sx in (-1, 1):
            p.ellipse(_CX + sx * (identity.eye_dx + 4), _EY + 21, 10, 7, _mix(f.skin, (235, 90, 105), 0.45))
    # nose: a shaded side of the bridge, a darker base, a highlight on the tip and two nostrils
    nl, nw = f.nl, f.nw
    p.line(np.array([[_CX - 3, _EY + 3], [_CX - 4.5, _EY + nl - 5], [_CX - nw, _EY + nl - 1]]), f.skin_dark,
           2.2 if a["Big_Nose"] else 1.6)
    p.ellipse(_CX, _EY + nl - 0.5, nw, 3.6, f.skin_dark)
    p.ellipse(_CX + 1, _EY + nl - 2, nw * 0.5, 2.2, _shade(f.skin, 1.04))
    for sx in (-1, 1):
        p.ellipse(_CX + sx * nw * 0.45, _EY + nl + 1, 1.9, 1.1, _shade(f.skin, 0.45))
    if a["Smiling"] or not a["Young"]:  # nose-to-mouth folds
        fold = _shade(f.skin, 0.8 if not a["Young"] else 0.86)
        for sx in (-1, 1):
            p.line(np.array([[_CX + sx * (nw + 3), _EY + nl - 3], [_CX + sx * (f.mw + 5), f.my - 2],
                             [_CX + sx * (f.mw + 4), f.my + 5]]), fold, 1.4)
    if not a["Young"]:  # forehead lines (hidden by bangs or a hat, as they would be) and jowl lines
        wrinkle = _shade(f.skin, 0.75)
        for k in range(3):
            p.line(_curve(_CX, f.fw * 0.55, _EY - 24 - 5 * k - 2 * (1 - _U ** 2)), wrinkle, 1.1)
        for sx in (-1, 1):
            p.line(np.array([[_CX + sx * (f.mw + 3), f.my + 4], [_CX + sx * (f.mw + 5), f.my + 16]]),
                   wrinkle, 1.2)


def _draw_mouth(p: _Painter, f: _Face, identity: Identity, a: dict[str, bool], r: np.ndarray) -> None:
    """Lips (corners lifted when smiling), the open mouth and teeth, moustache and goatee."""
    mw, my = f.mw, f.my
    lip_h = identity.lip_h * (2.1 if a["Big_Lips"] else 1.0)
    lift = 4.0 if a["Smiling"] else -0.5
    bend = _U ** 2
    mid = my + (2.0 if a["Smiling"] else 0.0) * (1 - bend) - lift * bend  # the line between the lips
    upper = my - lip_h * (1 - bend) ** 0.6 - lift * bend + 0.9 * np.exp(-(_U / 0.18) ** 2)  # cupid's bow
    gap = np.zeros_like(_U)
    if a["Mouth_Slightly_Open"]:
        gap = (6.5 if a["Smiling"] else 5.0) * (1 - bend) ** 0.7
    lower_top = mid + gap
    lower = lower_top + 1.25 * lip_h * (1 - bend) ** 0.6
    lip = _mix(f.skin, (170, 80, 80), 0.55)
    if a["Wearing_Lipstick"]:
        lip = _LIPSTICK[int(r[15] * len(_LIPSTICK))]
    lower_lip = np.concatenate([_curve(_CX, mw, lower_top), _curve(_CX, mw, lower)[::-1]])
    p.poly(np.concatenate([_curve(_CX, mw, upper), _curve(_CX, mw, mid)[::-1]]), lip)
    p.poly(lower_lip, _shade(lip, 0.9))
    if a["Mouth_Slightly_Open"]:
        p.poly(np.concatenate([_curve(_CX, mw * 0.95, mid), _curve(_CX, mw * 0.95, lower_top)[::-1]]),
               (70, 28, 30))
        if a["Smiling"]:  # upper teeth
            teeth = [_curve(_CX, mw * 0.8, mid), _curve(_CX, mw * 0.8, mid + gap * 0.45)[::-1]]
            p.poly(np.concatenate(teeth), (238, 232, 222))
    else:
        p.line(_curve(_CX, mw, mid), _shade(lip, 0.55), 1.0)
    if a["Mustache"]:
        stache = np.array([[-mw - 4, 3], [-mw * 0.7, -6], [-2, -9], [0, -8], [2, -9], [mw * 0.7, -6],
                           [mw + 4, 3], [mw * 0.5, -1], [0, -2], [-mw * 0.5, -1]])
        p.poly(stache + (_CX, my - lip_h * 0.6 - lift * 0.3), f.beard)
    if a["Goatee"]:
        below = f.chin_y - my
        p.poly(np.array([[-mw * 0.55, 3], [mw * 0.55, 3], [mw * 0.35, below - 2], [0, below + 1],
                         [-mw * 0.35, below - 2]]) + (_CX, my), f.beard)
        p.poly(lower_lip, _shade(lip, 0.9))  # the lower lip stays in front of the goatee


def _draw_eyes(p: _Painter, f: _Face, identity: Identity, a: dict[str, bool], r: np.ndarray) -> None:
    """Eye sockets, almond-shaped eyes with iris and pupil, makeup, bags, crow's feet, eyebrows."""
    eh = identity.eye_h * (0.5 if a["Narrow_Eyes"] else 1.0) * (0.85 if a["Smiling"] else 1.0)
    ew = identity.eye_w
    socket = _shade(f.skin, 0.9)
    shadow = socket
    if a["Heavy_Makeup"]:  # purple or brown eye shadow
        shadow = _mix(socket, (120, 70, 130) if r[16] < 0.5 else (110, 75, 50), 0.45)
    gaze = (r[17] - 0.5) * 2.4
    for sx in (-1, 1):
        ex = _CX + sx * identity.eye_dx
        p.ellipse(ex, _EY - 1, ew + 4, eh + 4.5, socket)
        top_lid = _curve(ex, ew, _EY - eh * (1 - _U ** 2) ** 0.8 - 0.6 * sx * _U)
        bottom_lid = _curve(ex, ew, _EY + 0.75 * eh * (1 - _U ** 2) ** 0.9)
        p.poly(np.concatenate([top_lid, bottom_lid[::-1]]), (236, 232, 228))
        p.ellipse(ex + gaze, _EY, 3.6, 3.6, identity.iris)
        p.ellipse(ex + gaze, _EY, 1.6, 1.6, (15, 12, 12))
        # lids drawn over the iris clip it to the almond shape
        p.poly(np.concatenate([top_lid, [[ex + ew + 1, _EY - 7], [ex - ew - 1, _EY - 7]]]), shadow)
        p.poly(np.concatenate([bottom_lid, [[ex + ew + 1, _EY + 6], [ex - ew - 1, _EY + 6]]]), socket)
        p.line(top_lid, (35, 25, 25), 2.2 if a["Heavy_Makeup"] else 1.2)
        if a["Bags_Under_Eyes"]:  # a shadowed crescent under the eye with a crease below it
            crease = _curve(ex, ew, _EY + eh + 4.5 - 2 * _U ** 2)
            p.poly(np.concatenate([bottom_lid + (0, 1), crease[::-1]]), _shade(f.skin, 0.8))
            p.line(crease[2:-2], _shade(f.skin, 0.66), 1.2)
        if not a["Young"]:  # crow's feet
            outer = ex + sx * (ew + 1.5)
            for dy in (-2.0, 1.0, 4.0):
                p.line(np.array([[outer, _EY + dy * 0.4], [outer + sx * 4, _EY + dy]]),
                       _shade(f.skin, 0.72), 0.9)
        thick = identity.brow * (1.5 if a["Male"] else 1.0) * (1.8 if a["Bushy_Eyebrows"] else 1.0)
        arch = 4.5 if a["Arched_Eyebrows"] else 1.5
        outward = sx * _U  # > 0 towards the temple, where the brow peaks and thins
        brow = _EY - 11 - eh * 0.3 - arch * np.exp(-((outward - 0.35) / 0.45) ** 2) + 1.5 * (outward > 0)
        upper = _curve(ex + sx, ew + 3, brow - thick * (1 - 0.5 * (outward > 0.6)))
        p.poly(np.concatenate([upper, _curve(ex + sx, ew + 3, brow)[::-1]]), f.brow)


def _draw_hair(p: _Painter, f: _Face, identity: Identity, a: dict[str, bool], r: np.ndarray) -> None:
    """Hair over the head and forehead: cap and hairline, side locks, sideburns, bangs, strands."""
    if a["Bald"]:  # a highlight on the scalp reads as "bald" at 64x64
        p.ellipse(_CX + 6, _EY - 52, 12, 6, _shade(f.skin, 1.1))
        return
    fw, long_hair = f.fw, identity.hair_len > 0.4
    depth = 34.0 + 6 * (identity.hair_volume - 4) / 7
    hairline = _EY - 12 - depth * (1 - _U ** 2) ** 0.5
    if a["Receding_Hairline"]:  # an M-shaped hairline, deepest over the temples
        hairline = hairline - 16 * np.exp(-((np.abs(_U) - 0.55) / 0.22) ** 2) - 4
    temple = 0.45 if long_hair else 0.2
    cap = _arc(_CX, _EY + 4, f.side, f.top + identity.hair_volume, -temple, -np.pi + temple, 40)
    # wavy hair gets a scalloped outline, straight hair a smooth one
    scallop = 1 + 0.012 * f.wave * np.sin(np.linspace(0, 13 * np.pi, 40))
    cap = (cap - (_CX, _EY + 4)) * scallop[:, None] + (_CX, _EY + 4)
    p.poly(np.concatenate([cap, _curve(_CX, fw + 1, hairline)]), f.hair)
    if a["Straight_Hair"]:  # straight hair is glossy: a light sheen across the crown tells it from the rest
        sheen = _arc(_CX, _EY + 4, f.side - 6, f.top + identity.hair_volume - 7, -2.4, -0.75, 20)
        p.line(sheen, _mix(f.hair, (255, 255, 255), 0.4), 3.0)
    if long_hair:  # locks frame the face down past the jaw
        ys = np.linspace(_EY - 30, _EY + 40 + 30 * identity.hair_len, 10)
        wig = f.wave * 0.6 * np.sin(ys / 6.0 + 6 * r[14])
        above = np.clip((_EY + 4 - ys) / (f.top + identity.hair_volume), 0, 1)
        outer = f.side * np.sqrt(1 - above ** 2) + 3 * (ys - ys[0]) / (ys[-1] - ys[0]) + wig
        inner = np.minimum(fw * np.sqrt(1 - np.clip((_EY + 4 - ys) / f.top, 0, 1) ** 2), fw) - 5 + wig
        for sx in (-1, 1):
            lock = [np.stack([_CX + sx * outer, ys], 1), np.stack([_CX + sx * inner, ys], 1)[::-1]]
            p.poly(np.concatenate(lock), f.hair)
    if a["Sideburns"]:
        for sx in (-1, 1):
            p.poly(np.array([[_CX + sx * (fw + 1), _EY - 14], [_CX + sx * (fw - 7), _EY - 12],
                             [_CX + sx * (fw - 6), _EY + 22], [_CX + sx * (fw + 0.5), _EY + 22]]),
                   _mix(f.hair, f.beard, 0.5))
    if a["Bangs"]:  # a fringe with a jagged edge just above the brows
        fringe = _EY - 19 + 3.5 * (np.arange(_U.size) % 2) - 3 * _U ** 2
        p.poly(np.concatenate([_curve(_CX, fw * 0.92, fringe), _curve(_CX, fw + 2, hairline)[::-1]]), f.hair)
    strand = _shade(f.hair, 0.75 if f.hair[0] > 100 else 1.6)
    for k in range(4):  # a few strands give the hair texture; wavy hair gets wavy strands
        x0 = _CX + (k - 1.5) * fw * 0.3
        ys = np.linspace(_EY - f.top + 12, _EY - depth - 2, 6)
        xs = x0 + (x0 - _CX) * 0.3 * (ys - ys[0]) / 40 + f.wave * 0.8 * np.sin(ys / 4.0 + k)
        p.line(np.stack([xs, ys], 1), strand, 1.1)


def _draw_accessories(p: _Painter, f: _Face, identity: Identity, a: dict[str, bool], r: np.ndarray) -> None:
    """Hat (brimmed or beanie), drop earrings, glasses (clear or sunglasses)."""
    fw, ew = f.fw, identity.eye_w
    if a["Wearing_Hat"]:
        colour = tuple(int(v) for v in 20 + 200 * r[18:21])
        band = _EY - 26
        crown = _arc(_CX, _EY + 4, fw + 9, f.top + 16, -0.38, -np.pi + 0.38)
        p.poly(np.concatenate([crown, [[_CX - fw - 9, band], [_CX + fw + 9, band]]]), colour)
        if r[21] < 0.5:
            p.ellipse(_CX, band, fw + 24, 6.5, _shade(colour, 0.8))
        else:
            p.poly(np.array([[_CX - fw - 9, band - 9], [_CX + fw + 9, band - 9], [_CX + fw + 8, band + 2],
                             [_CX - fw - 8, band + 2]]), _shade(colour, 0.85))
    if a["Wearing_Earrings"]:
        metal = (220, 180, 70) if r[22] < 0.5 else (205, 205, 215)
        for sx in (-1, 1):
            p.ellipse(_CX + sx * (fw + 1.5), _EY + 24, 2.8, 2.8, metal)
            p.ellipse(_CX + sx * (fw + 1.5), _EY + 31, 2.2, 4.2, metal)
    if a["Eyeglasses"]:
        frame = tuple(int(v) for v in 15 + 90 * r[23:26])
        for sx in (-1, 1):
            ex = _CX + sx * identity.eye_dx
            lens = np.stack([ex + (ew + 3.5) * np.sign(_CIRCLE[:, 0]) * np.abs(_CIRCLE[:, 0]) ** 0.5,
                             _EY + 1 + 7.5 * np.sign(_CIRCLE[:, 1]) * np.abs(_CIRCLE[:, 1]) ** 0.6], 1)
            if r[26] < 0.25:  # sunglasses
                p.poly(lens, (25, 25, 30))
            p.line(np.concatenate([lens, lens[:1]]), frame, 2.0)
            p.line(np.array([[ex + sx * (ew + 3.5), _EY - 2], [_CX + sx * (fw + 1), _EY + 2]]), frame, 2.0)
        p.line(np.array([[_CX - identity.eye_dx + ew + 3, _EY - 1], [_CX, _EY - 3],
                         [_CX + identity.eye_dx - ew - 3, _EY - 1]]), frame, 1.8)


def render_face(identity: Identity, attributes: dict[str, bool], rng: np.random.Generator) -> Image.Image:
    """Draw one 178x218 RGB face whose visible traits follow `attributes` (see RENDERED_ATTRIBUTES).

    All random draws (pose, lighting, colours of clothes, background and accessories) are taken up front,
    in a fixed number, so the same rng state with one attribute flipped gives the same picture but for it.
    """
    r = rng.random(34)
    f = _layout(identity, attributes)
    # Brightness, contrast and colour cast map colours to colours, so they are applied to each fill colour
    # (a lookup table) rather than to pixels; only the side light, at the end, is a pixel operation.
    light = int(r[28] * len(_SIDE_LIGHT))
    gain = (0.88 + 0.27 * r[29]) / (1 - 0.5 * abs(_SIDE_SLOPES[light]))  # compensates the side light
    contrast = 0.85 + 0.25 * r[30]
    lut = ((_LEVELS - 128) * contrast + 128) * gain * (0.95 + 0.1 * r[31:34])[:, None]
    scale = 0.94 + 0.12 * r[8]
    pose = _pose_matrix(float((r[7] - 0.5) * 14), scale, (r[9] - 0.5) * 7, (r[10] - 0.5) * 6)
    canvas = Image.new("RGB", (WIDTH * _SS, HEIGHT * _SS))
    p = _Painter(canvas, pose, _SS * scale, np.clip(np.round(lut), 0, 255).astype(np.int64))
    _draw_background(p, r)
    _draw_behind(p, f, identity, attributes, r)
    _draw_skin(p, f, identity, attributes)
    _draw_mouth(p, f, identity, attributes, r)
    _draw_eyes(p, f, identity, attributes, r)
    _draw_hair(p, f, identity, attributes, r)
    _draw_accessories(p, f, identity, attributes, r)
    img = canvas.reduce(_SS)  # box filter: the 2x drawing becomes antialiased
    if attributes["Blurry"]:
        img = img.filter(ImageFilter.GaussianBlur(float(1.4 + r[27])))
    return ImageChops.multiply(img, _SIDE_LIGHT[light])


def _plan(num_images: int, seed: int, per_identity: int = IMAGES_PER_IDENTITY) -> tuple[np.ndarray, np.ndarray]:
    """Identity and partition of every image, in file order.

    About `per_identity` images per identity (CelebA's 20: 10..30), identities split ~80/10/10 between
    train/val/test with at least one each, files numbered train first, then val, then test, shuffled within a
    split, as in CelebA.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, _STREAM_PLAN]))
    k = max(3, round(num_images / per_identity))
    ids = rng.permutation(max(k, 10177))[:k] + 1  # CelebA numbers its 10,177 identities from 1
    extra = (num_images - k) * rng.uniform(0.5 * per_identity, 1.5 * per_identity, k)
    extra /= extra.sum() / (num_images - k) if num_images > k else 1.0
    counts = 1 + np.floor(extra).astype(np.int64)  # at least one image per identity
    short = num_images - int(counts.sum())
    counts[np.argsort(np.floor(extra) - extra, kind="stable")[:short]] += 1  # largest remainders first
    n_held = max(1, round(0.1 * k))
    split = np.zeros(k, dtype=np.int64)
    split[k - 2 * n_held:k - n_held], split[k - n_held:] = 1, 2
    order = [rng.permutation(np.repeat(ids[split == s], counts[split == s])) for s in (0, 1, 2)]
    partition = np.concatenate([np.full(o.size, s, dtype=np.int64) for s, o in enumerate(order)])
    return np.concatenate(order), partition


def _identity(seed: int, identity_id: int) -> Identity:
    rng = np.random.default_rng(np.random.SeedSequence([seed, _STREAM_IDENTITY, identity_id]))
    return sample_identity(rng)


def _make_image(job: tuple[int, Identity, int, str]) -> list[bool]:
    """Sample, draw and write image `index`; top-level so that worker processes can run it."""
    index, identity, seed, path = job
    rng = np.random.default_rng(np.random.SeedSequence([seed, _STREAM_IMAGE, index]))
    attributes = sample_attributes(identity, rng)
    render_face(identity, attributes, rng).save(path, "JPEG", quality=_JPEG_QUALITY)
    return [attributes[name] for name in CELEBA_ATTRIBUTES]


def _claim(base: Path) -> None:
    """Make `base` ours to (re)write; refuse a folder holding files we did not write (a real CelebA?)."""
    ours = (base / MARKER).exists() or (base / _INCOMPLETE).exists()
    if base.is_dir() and any(base.iterdir()) and not ours:
        raise DataError(f"{base} holds files that the synthetic generator did not write (a real CelebA?); "
                        "refusing to overwrite them: pass another root.")
    base.mkdir(parents=True, exist_ok=True)
    (base / _INCOMPLETE).touch()
    (base / MARKER).unlink(missing_ok=True)
    shutil.rmtree(base / "img_align_celeba", ignore_errors=True)  # images of an older, larger set
    (base / "img_align_celeba").mkdir()


def _check_args(num_images: int, seed: int) -> None:
    if not isinstance(num_images, (int, np.integer)) or num_images < 3:
        raise ConfigError(f"num_images must be an integer >= 3 (one identity per split), not {num_images!r}.")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, not {seed!r}.")


def generate_synthetic_celeba(root: str | os.PathLike, num_images: int, seed: int = 0, progress: bool = True,
                              workers: int = 1, per_identity: int = IMAGES_PER_IDENTITY) -> Path:
    """Write `num_images` synthetic faces in the torchvision CelebA layout under `<root>/celeba`; return it.

    Writes img_align_celeba/*.jpg, list_attr_celeba.txt, identity_CelebA.txt, list_eval_partition.txt,
    then the marker `synthetic.json` last. `workers` > 1 renders in that many processes; the files are the
    same either way (a script using it needs the usual `if __name__ == "__main__":` guard).
    """
    _check_args(num_images, seed)
    base = Path(root).expanduser() / "celeba"
    _claim(base)
    identity_of, partition = _plan(int(num_images), int(seed), int(per_identity))
    people = {int(i): _identity(seed, int(i)) for i in np.unique(identity_of)}
    names = [f"{i + 1:06d}.jpg" for i in range(num_images)]
    jobs = [(i, people[int(identity_of[i])], int(seed), str(base / "img_align_celeba" / names[i]))
            for i in range(num_images)]
    # tqdm wraps the iterator (its update() may return True, so it cannot be chained with `or`).
    tqdm_args = dict(total=num_images, desc="synthetic CelebA", unit="img", disable=not progress)
    if workers > 1:
        with get_context("spawn").Pool(workers) as pool:  # spawn: safe next to torch threads, unlike fork
            rows = list(tqdm(pool.imap(_make_image, jobs, chunksize=32), **tqdm_args))
    else:
        rows = [_make_image(job) for job in tqdm(jobs, **tqdm_args)]

    crlf = "\r\n"  # the official annotation files are CRLF throughout
    attr_lines = [str(num_images), " ".join(CELEBA_ATTRIBUTES) + " "]  # the official header ends in a space
    # as in the official file, the first value follows one space unpadded and the others are right-aligned
    # in 3 characters: "000001.jpg -1  1 -1 ...", but "000002.jpg 1 -1 ..."
    attr_lines += [f"{name} {'1' if row[0] else '-1'}" + "".join("  1" if v else " -1" for v in row[1:])
                   for name, row in zip(names, rows, strict=True)]
    atomic_write_text(base / "list_attr_celeba.txt", crlf.join(attr_lines) + crlf)
    atomic_write_text(base / "identity_CelebA.txt",
                  "".join(f"{n} {i}{crlf}" for n, i in zip(names, identity_of.tolist(), strict=True)))
    atomic_write_text(base / "list_eval_partition.txt",
                  "".join(f"{n} {s}{crlf}" for n, s in zip(names, partition.tolist(), strict=True)))
    marker = {"generator": "vaelib.data.synthetic", "version": GENERATOR_VERSION,
              "num_images": int(num_images), "seed": int(seed), "images_per_identity": int(per_identity),
              "identities": len(people),
              "images_per_split": np.bincount(partition, minlength=3).tolist()}
    atomic_write_text(base / MARKER, json.dumps(marker, indent=1))
    (base / _INCOMPLETE).unlink()
    return base


def ensure_synthetic_celeba(root: str | os.PathLike, num_images: int, seed: int = 0, progress: bool = True,
                            workers: int = 1, per_identity: int = IMAGES_PER_IDENTITY) -> Path:
    """Return `<root>/celeba` if it holds the complete set for (num_images, seed, version); else write it."""
    _check_args(num_images, seed)
    base = Path(root).expanduser() / "celeba"
    try:
        marker = json.loads((base / MARKER).read_text())
    except (OSError, ValueError):
        marker = {}
    wanted = {"version": GENERATOR_VERSION, "num_images": int(num_images), "seed": int(seed),
              "images_per_identity": int(per_identity)}
    marker.setdefault("images_per_identity", IMAGES_PER_IDENTITY)  # sets written before the option had 20
    if all(marker.get(key) == value for key, value in wanted.items()):
        print(f"synthetic CelebA: reusing {num_images:,} images (seed {seed}) in {base}")
        return base
    print(f"synthetic CelebA: generating {num_images:,} images (seed {seed}) in {base}")
    return generate_synthetic_celeba(root, num_images, seed, progress, workers, per_identity)
