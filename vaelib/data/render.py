"""Drawing one synthetic face: background, clothes and hair behind the head, skin, mouth, eyes, hair and
accessories, painted at twice the size and box-downsampled (antialiasing), then lit from one side."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageChops, ImageFilter

from .canvas import (
    CIRCLE,
    CX,
    EY,
    HEIGHT,
    SS,
    WIDTH,
    Face,
    Painter,
    U,
    arc,
    curve,
    face_layout,
    face_outline,
    pose_matrix,
)
from .people import Identity, mix, shade

_LIPSTICK = ((180, 25, 45), (210, 80, 115), (130, 30, 60))
_BG_BANDS = 24  # background gradient steps: smooth enough after JPEG, cheaper than a pixel gradient
_LEVELS = np.arange(256, dtype=np.float64)[None, :]
# Faces are aligned on the eyes, as `img_align_celeba` aligns its photos: no roll, scale or shift from image to
# image. Version 3 jittered them (+-7 degrees, +-6 %, +-1.5 px at 64x64), which real aligned crops barely have; the
# demo VAE then spent its few steps on where features are rather than what they are (test PSNR 20.9 -> 22.2 dB,
# judged feature edits 2 -> 4 of 4 targets at >= 70 % without it, benchmarks/RESULTS.md).
_ALIGNED = pose_matrix(0.0, 1.0, 0.0, 0.0)


def _side_light(slope: float) -> Image.Image:
    """Multiplier image (255 = 1) that darkens one side of the frame by up to |slope|."""
    ramp = np.linspace(-1.0, 1.0, WIDTH) * np.sign(slope)
    row = np.round(255 * (1 - abs(slope) * (1 + ramp) / 2)).astype(np.uint8)
    return Image.fromarray(np.repeat(np.repeat(row[None, :, None], HEIGHT, 0), 3, 2), "RGB")


_SIDE_SLOPES = np.linspace(-0.35, 0.35, 15)
_SIDE_LIGHT = [_side_light(s) for s in _SIDE_SLOPES]  # 15 light directions, built once (1.7 MB)



def _draw_background(p: Painter, r: np.ndarray) -> None:
    """A vertical gradient between two muted colours (CelebA backgrounds are mostly dark or light)."""
    grey = 20 + 215 * r[3]
    top = tuple(int(np.clip(grey + (v - 0.5) * 110, 0, 255)) for v in r[0:3])
    bottom = tuple(int(np.clip(grey * 0.8 + (v - 0.5) * 110, 0, 255)) for v in r[4:7])
    band = HEIGHT * SS / _BG_BANDS
    for k in range(_BG_BANDS):
        p.draw.rectangle((0, round(k * band), WIDTH * SS, round((k + 1) * band)),
                         fill=p.tone(mix(top, bottom, k / (_BG_BANDS - 1))))


def _draw_behind(p: Painter, f: Face, identity: Identity, a: dict[str, bool], r: np.ndarray) -> None:
    """Clothes, the hair mass behind the head, neck and ears."""
    p.ellipse(CX, 250, 100, 52, tuple(int(v) for v in 30 + 190 * r[11:14]))
    if not a["Bald"] and identity.hair_len > 0.4:
        length = EY + 40 + 90 * identity.hair_len
        ys = np.linspace(EY - 10, length, 12)
        wiggle = f.wave * np.sin(ys / 7.0 + 6 * r[14])
        spread = f.side + 14 * (ys - ys[0]) / (length - ys[0]) * identity.hair_len
        left = np.stack([CX - spread + wiggle, ys], axis=1)  # top -> bottom
        right = np.stack([CX + spread + wiggle, ys], axis=1)[::-1]  # bottom -> top
        # crown: right -> left
        crown = arc(CX, EY + 4, f.side, f.top + identity.hair_volume, -0.15, -np.pi + 0.15)
        p.poly(np.concatenate([left, right, crown]), f.hair)
    neck_w = f.fw * (0.62 if a["Male"] else 0.52)
    p.poly(np.array([[CX - neck_w, EY + 30], [CX - neck_w - 2, 222], [CX + neck_w + 2, 222],
                     [CX + neck_w, EY + 30]]), f.skin_shadow)
    if a["Double_Chin"]:  # a fuller under-chin, lit like the face rather than shadowed like the neck
        p.ellipse(CX, f.chin_y + 1, f.fw * 0.68, 11, f.skin_dark)
    for sx in (-1, 1):
        p.ellipse(CX + sx * (f.fw + 1), EY + 10, 5.5, 12, f.skin_dark)


def _draw_skin(p: Painter, f: Face, identity: Identity, a: dict[str, bool]) -> None:
    """Face shape, facial hair on the jaw, cheeks, nose, folds and wrinkles."""
    outline = face_outline(f.fw, f.top, f.chin, f.jaw)
    p.poly(outline, f.skin_dark)  # a darker rim, then the face inset: cheap rounded shading
    p.poly((outline - (CX, EY)) * (0.93, 0.97) + (CX, EY - 1), f.skin)
    if a["Double_Chin"]:  # the fold of the second chin
        p.line(arc(CX, f.chin_y - 7, f.fw * 0.5, 7, 0.4, np.pi - 0.4, 12), shade(f.skin, 0.6), 2.4)
    jaw = outline[outline[:, 1] > EY + 14]  # cheeks, jaw and chin: where beards grow
    jaw = jaw[np.argsort(np.arctan2(jaw[:, 1] - EY, jaw[:, 0] - CX))]
    if a["5_o_Clock_Shadow"]:
        p.poly(np.concatenate([jaw, [[CX, f.my - 8]]]), mix(f.skin, f.beard, 0.3))
    if not a["No_Beard"] and not a["Goatee"]:  # full beard; the lips are drawn over it later
        inner = np.array([[CX - f.mw - 3, f.my - 4], [CX - f.fw * 0.6, EY + 24],
                          [CX - f.fw * 0.8, EY + 14]])
        p.poly(np.concatenate([jaw, inner[::-1] * (-1, 1) + (2 * CX, 0), inner]), f.beard)
    if a["Rosy_Cheeks"]:
        for sx in (-1, 1):
            p.ellipse(CX + sx * (identity.eye_dx + 4), EY + 21, 10, 7, mix(f.skin, (235, 90, 105), 0.45))
    # nose: a shaded side of the bridge, a darker base, a highlight on the tip and two nostrils
    nl, nw = f.nl, f.nw
    p.line(np.array([[CX - 3, EY + 3], [CX - 4.5, EY + nl - 5], [CX - nw, EY + nl - 1]]), f.skin_dark,
           2.8 if a["Big_Nose"] else 1.6)
    p.ellipse(CX, EY + nl - 0.5, nw, 3.6, f.skin_dark)
    p.ellipse(CX + 1, EY + nl - 2, nw * 0.5, 2.2, shade(f.skin, 1.04))
    for sx in (-1, 1):
        p.ellipse(CX + sx * nw * 0.45, EY + nl + 1, 1.9, 1.1, shade(f.skin, 0.45))
    if a["Smiling"] or not a["Young"]:  # nose-to-mouth folds
        fold = shade(f.skin, 0.72 if not a["Young"] else 0.86)
        for sx in (-1, 1):
            p.line(np.array([[CX + sx * (nw + 3), EY + nl - 3], [CX + sx * (f.mw + 5), f.my - 2],
                             [CX + sx * (f.mw + 4), f.my + 5]]), fold, 1.4 if a["Young"] else 2.2)
    if not a["Young"]:  # forehead lines (hidden by bangs or a hat, as they would be) and jowl lines
        wrinkle = shade(f.skin, 0.66)
        for k in range(3):
            p.line(curve(CX, f.fw * 0.6, EY - 24 - 5.5 * k - 2 * (1 - U ** 2)), wrinkle, 1.8)
        for sx in (-1, 1):
            p.line(np.array([[CX + sx * (f.mw + 3), f.my + 4], [CX + sx * (f.mw + 5), f.my + 16]]),
                   wrinkle, 2.0)


def _draw_mouth(p: Painter, f: Face, identity: Identity, a: dict[str, bool], r: np.ndarray) -> None:
    """Lips (corners lifted when smiling), the open mouth and teeth, moustache and goatee."""
    mw, my = f.mw, f.my
    lip_h = identity.lip_h * (2.5 if a["Big_Lips"] else 1.0)
    lift = 4.0 if a["Smiling"] else -0.5
    bend = U ** 2
    mid = my + (2.0 if a["Smiling"] else 0.0) * (1 - bend) - lift * bend  # the line between the lips
    upper = my - lip_h * (1 - bend) ** 0.6 - lift * bend + 0.9 * np.exp(-(U / 0.18) ** 2)  # cupid's bow
    gap = np.zeros_like(U)
    if a["Mouth_Slightly_Open"]:
        gap = (6.5 if a["Smiling"] else 5.0) * (1 - bend) ** 0.7
    lower_top = mid + gap
    lower = lower_top + 1.25 * lip_h * (1 - bend) ** 0.6
    lip = mix(f.skin, (170, 80, 80), 0.55)
    if a["Wearing_Lipstick"]:
        lip = _LIPSTICK[int(r[15] * len(_LIPSTICK))]
    lower_lip = np.concatenate([curve(CX, mw, lower_top), curve(CX, mw, lower)[::-1]])
    p.poly(np.concatenate([curve(CX, mw, upper), curve(CX, mw, mid)[::-1]]), lip)
    p.poly(lower_lip, shade(lip, 0.9))
    if a["Mouth_Slightly_Open"]:
        p.poly(np.concatenate([curve(CX, mw * 0.95, mid), curve(CX, mw * 0.95, lower_top)[::-1]]),
               (70, 28, 30))
        if a["Smiling"]:  # upper teeth
            teeth = [curve(CX, mw * 0.8, mid), curve(CX, mw * 0.8, mid + gap * 0.45)[::-1]]
            p.poly(np.concatenate(teeth), (238, 232, 222))
    else:
        p.line(curve(CX, mw, mid), shade(lip, 0.55), 1.0)
    if a["Mustache"]:
        stache = np.array([[-mw - 4, 3], [-mw * 0.7, -6], [-2, -9], [0, -8], [2, -9], [mw * 0.7, -6],
                           [mw + 4, 3], [mw * 0.5, -1], [0, -2], [-mw * 0.5, -1]])
        p.poly(stache + (CX, my - lip_h * 0.6 - lift * 0.3), f.beard)
    if a["Goatee"]:
        below = f.chin_y - my
        p.poly(np.array([[-mw * 0.55, 3], [mw * 0.55, 3], [mw * 0.35, below - 2], [0, below + 1],
                         [-mw * 0.35, below - 2]]) + (CX, my), f.beard)
        p.poly(lower_lip, shade(lip, 0.9))  # the lower lip stays in front of the goatee


def _draw_eyes(p: Painter, f: Face, identity: Identity, a: dict[str, bool], r: np.ndarray) -> None:
    """Eye sockets, almond-shaped eyes with iris and pupil, makeup, bags, crow's feet, eyebrows."""
    eh = identity.eye_h * (0.4 if a["Narrow_Eyes"] else 1.0) * (0.85 if a["Smiling"] else 1.0)
    ew = identity.eye_w
    socket = shade(f.skin, 0.9)
    shadow = socket
    if a["Heavy_Makeup"]:  # purple or brown eye shadow
        shadow = mix(socket, (120, 70, 130) if r[16] < 0.5 else (110, 75, 50), 0.45)
    gaze = (r[17] - 0.5) * 2.4
    for sx in (-1, 1):
        ex = CX + sx * identity.eye_dx
        p.ellipse(ex, EY - 1, ew + 4, eh + 4.5, socket)
        top_lid = curve(ex, ew, EY - eh * (1 - U ** 2) ** 0.8 - 0.6 * sx * U)
        bottom_lid = curve(ex, ew, EY + 0.75 * eh * (1 - U ** 2) ** 0.9)
        p.poly(np.concatenate([top_lid, bottom_lid[::-1]]), (236, 232, 228))
        p.ellipse(ex + gaze, EY, 3.6, 3.6, identity.iris)
        p.ellipse(ex + gaze, EY, 1.6, 1.6, (15, 12, 12))
        # lids drawn over the iris clip it to the almond shape
        p.poly(np.concatenate([top_lid, [[ex + ew + 1, EY - 7], [ex - ew - 1, EY - 7]]]), shadow)
        p.poly(np.concatenate([bottom_lid, [[ex + ew + 1, EY + 6], [ex - ew - 1, EY + 6]]]), socket)
        p.line(top_lid, (35, 25, 25), 2.2 if a["Heavy_Makeup"] else 1.2)
        if a["Bags_Under_Eyes"]:  # a shadowed crescent under the eye with a crease below it
            crease = curve(ex, ew + 1, EY + eh + 7.5 - 3 * U ** 2)
            p.poly(np.concatenate([bottom_lid + (0, 1), crease[::-1]]), shade(f.skin, 0.78))
            p.line(crease[2:-2], shade(f.skin, 0.6), 1.6)
        if not a["Young"]:  # crow's feet
            outer = ex + sx * (ew + 1.5)
            for dy in (-2.0, 1.0, 4.0):
                p.line(np.array([[outer, EY + dy * 0.4], [outer + sx * 5, EY + dy * 1.3]]),
                       shade(f.skin, 0.64), 1.4)
        thick = identity.brow * (1.5 if a["Male"] else 1.0) * (2.4 if a["Bushy_Eyebrows"] else 1.0)
        arch = 6.0 if a["Arched_Eyebrows"] else 1.5
        outward = sx * U  # > 0 towards the temple, where the brow peaks and thins
        brow = EY - 11 - eh * 0.3 - arch * np.exp(-((outward - 0.35) / 0.45) ** 2) + 1.5 * (outward > 0)
        upper = curve(ex + sx, ew + 3, brow - thick * (1 - 0.5 * (outward > 0.6)))
        p.poly(np.concatenate([upper, curve(ex + sx, ew + 3, brow)[::-1]]), f.brow)


def _draw_hair(p: Painter, f: Face, identity: Identity, a: dict[str, bool], r: np.ndarray) -> None:
    """Hair over the head and forehead: cap and hairline, side locks, sideburns, bangs, strands."""
    if a["Bald"]:  # a highlight on the scalp reads as "bald" at 64x64
        p.ellipse(CX + 6, EY - 52, 12, 6, shade(f.skin, 1.1))
        return
    fw, long_hair = f.fw, identity.hair_len > 0.4
    depth = 34.0 + 6 * (identity.hair_volume - 4) / 7
    hairline = EY - 12 - depth * (1 - U ** 2) ** 0.5
    if a["Receding_Hairline"]:  # an M-shaped hairline, deepest over the temples
        hairline = hairline - 16 * np.exp(-((np.abs(U) - 0.55) / 0.22) ** 2) - 4
    temple = 0.45 if long_hair else 0.2
    cap = arc(CX, EY + 4, f.side, f.top + identity.hair_volume, -temple, -np.pi + temple, 40)
    # wavy hair gets a scalloped outline, straight hair a smooth one
    scallop = 1 + 0.016 * f.wave * np.sin(np.linspace(0, 13 * np.pi, 40))
    cap = (cap - (CX, EY + 4)) * scallop[:, None] + (CX, EY + 4)
    p.poly(np.concatenate([cap, curve(CX, fw + 1, hairline)]), f.hair)
    if a["Straight_Hair"]:  # straight hair is glossy: a light sheen across the crown tells it from the rest
        sheen = arc(CX, EY + 4, f.side - 6, f.top + identity.hair_volume - 7, -2.4, -0.75, 20)
        p.line(sheen, mix(f.hair, (255, 255, 255), 0.4), 3.0)
    if long_hair:  # locks frame the face down past the jaw
        ys = np.linspace(EY - 30, EY + 40 + 30 * identity.hair_len, 10)
        wig = f.wave * 0.6 * np.sin(ys / 6.0 + 6 * r[14])
        above = np.clip((EY + 4 - ys) / (f.top + identity.hair_volume), 0, 1)
        outer = f.side * np.sqrt(1 - above ** 2) + 3 * (ys - ys[0]) / (ys[-1] - ys[0]) + wig
        inner = np.minimum(fw * np.sqrt(1 - np.clip((EY + 4 - ys) / f.top, 0, 1) ** 2), fw) - 5 + wig
        for sx in (-1, 1):
            lock = [np.stack([CX + sx * outer, ys], 1), np.stack([CX + sx * inner, ys], 1)[::-1]]
            p.poly(np.concatenate(lock), f.hair)
    if a["Sideburns"]:
        for sx in (-1, 1):
            p.poly(np.array([[CX + sx * (fw + 1), EY - 14], [CX + sx * (fw - 7), EY - 12],
                             [CX + sx * (fw - 6), EY + 22], [CX + sx * (fw + 0.5), EY + 22]]),
                   mix(f.hair, f.beard, 0.5))
    if a["Bangs"]:  # a fringe with a jagged edge just above the brows
        fringe = EY - 19 + 3.5 * (np.arange(U.size) % 2) - 3 * U ** 2
        p.poly(np.concatenate([curve(CX, fw * 0.92, fringe), curve(CX, fw + 2, hairline)[::-1]]), f.hair)
    strand = shade(f.hair, 0.75 if f.hair[0] > 100 else 1.6)
    for k in range(4):  # a few strands give the hair texture; wavy hair gets wavy strands
        x0 = CX + (k - 1.5) * fw * 0.3
        ys = np.linspace(EY - f.top + 12, EY - depth - 2, 6)
        xs = x0 + (x0 - CX) * 0.3 * (ys - ys[0]) / 40 + f.wave * 0.8 * np.sin(ys / 4.0 + k)
        p.line(np.stack([xs, ys], 1), strand, 1.1 + 0.12 * f.wave)


def _draw_accessories(p: Painter, f: Face, identity: Identity, a: dict[str, bool], r: np.ndarray) -> None:
    """Hat (brimmed or beanie), drop earrings, glasses (clear or sunglasses)."""
    fw, ew = f.fw, identity.eye_w
    if a["Wearing_Hat"]:
        colour = tuple(int(v) for v in 20 + 200 * r[18:21])
        band = EY - 26
        crown = arc(CX, EY + 4, fw + 9, f.top + 16, -0.38, -np.pi + 0.38)
        p.poly(np.concatenate([crown, [[CX - fw - 9, band], [CX + fw + 9, band]]]), colour)
        if r[21] < 0.5:
            p.ellipse(CX, band, fw + 24, 6.5, shade(colour, 0.8))
        else:
            p.poly(np.array([[CX - fw - 9, band - 9], [CX + fw + 9, band - 9], [CX + fw + 8, band + 2],
                             [CX - fw - 8, band + 2]]), shade(colour, 0.85))
    if a["Wearing_Earrings"]:
        metal = (220, 180, 70) if r[22] < 0.5 else (205, 205, 215)
        for sx in (-1, 1):
            p.ellipse(CX + sx * (fw + 1.5), EY + 24, 2.8, 2.8, metal)
            p.ellipse(CX + sx * (fw + 1.5), EY + 31, 2.2, 4.2, metal)
    if a["Eyeglasses"]:
        frame = tuple(int(v) for v in 15 + 90 * r[23:26])
        for sx in (-1, 1):
            ex = CX + sx * identity.eye_dx
            lens = np.stack([ex + (ew + 3.5) * np.sign(CIRCLE[:, 0]) * np.abs(CIRCLE[:, 0]) ** 0.5,
                             EY + 1 + 7.5 * np.sign(CIRCLE[:, 1]) * np.abs(CIRCLE[:, 1]) ** 0.6], 1)
            if r[26] < 0.25:  # sunglasses
                p.poly(lens, (25, 25, 30))
            # frames about 1.3 px wide at 64x64: thinner ones blur away in a CPU-trained VAE's reconstructions
            p.line(np.concatenate([lens, lens[:1]]), frame, 3.0)
            p.line(np.array([[ex + sx * (ew + 3.5), EY - 2], [CX + sx * (fw + 1), EY + 2]]), frame, 2.6)
        p.line(np.array([[CX - identity.eye_dx + ew + 3, EY - 1], [CX, EY - 3],
                         [CX + identity.eye_dx - ew - 3, EY - 1]]), frame, 2.6)


def render_face(identity: Identity, attributes: dict[str, bool], rng: np.random.Generator) -> Image.Image:
    """Draw one 178x218 RGB face whose visible traits follow `attributes` (see RENDERED_ATTRIBUTES).

    All random draws (lighting, colours of clothes, background and accessories) are taken up front, in a fixed
    number, so the same rng state with one attribute flipped gives the same picture but for it. r[7:11] drew
    the pose before faces were aligned (`_ALIGNED`); they stay drawn so that every other draw keeps its index.
    """
    r = rng.random(34)
    f = face_layout(identity, attributes)
    # Brightness, contrast and colour cast map colours to colours, so they are applied to each fill colour
    # (a lookup table) rather than to pixels; only the side light, at the end, is a pixel operation.
    light = int(r[28] * len(_SIDE_LIGHT))
    gain = (0.88 + 0.27 * r[29]) / (1 - 0.5 * abs(_SIDE_SLOPES[light]))  # compensates the side light
    contrast = 0.85 + 0.25 * r[30]
    lut = ((_LEVELS - 128) * contrast + 128) * gain * (0.95 + 0.1 * r[31:34])[:, None]
    canvas = Image.new("RGB", (WIDTH * SS, HEIGHT * SS))
    p = Painter(canvas, _ALIGNED, SS, np.clip(np.round(lut), 0, 255).astype(np.int64))
    _draw_background(p, r)
    _draw_behind(p, f, identity, attributes, r)
    _draw_skin(p, f, identity, attributes)
    _draw_mouth(p, f, identity, attributes, r)
    _draw_eyes(p, f, identity, attributes, r)
    _draw_hair(p, f, identity, attributes, r)
    _draw_accessories(p, f, identity, attributes, r)
    img = canvas.reduce(SS)  # box filter: the 2x drawing becomes antialiased
    if attributes["Blurry"]:
        img = img.filter(ImageFilter.GaussianBlur(float(1.4 + r[27])))
    return ImageChops.multiply(img, _SIDE_LIGHT[light])
