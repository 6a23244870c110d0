"""The people of the synthetic set: one identity's fixed traits and one image's 40 CelebA labels.

Probabilities roughly follow CelebA's label frequencies and correlations. The labels of `RENDERED_ATTRIBUTES`
are drawn by `vaelib.data.render`; the others are only sampled, so no image shows them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .attributes import CELEBA_ATTRIBUTES

# Labels that are only sampled (plausibly, correlated with what is drawn), not drawn: too subtle for
# 64x64 cartoons, or (necklace, necktie) below the crop box.
_LABEL_ONLY = {"Attractive", "High_Cheekbones", "Oval_Face", "Pointy_Nose", "Wearing_Necklace",
               "Wearing_Necktie"}
RENDERED_ATTRIBUTES: tuple[str, ...] = tuple(name for name in CELEBA_ATTRIBUTES if name not in _LABEL_ONLY)
HAIR_COLOURS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")  # at most one is set per image
_SKIN_LIGHT, _SKIN_MID, _SKIN_DARK = (244, 210, 186), (208, 160, 122), (115, 76, 55)
_IRIS = ((60, 38, 25), (95, 62, 35), (110, 90, 50), (70, 100, 70), (70, 105, 140), (95, 105, 115))

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


def mix(a: RGB, b: RGB, t: float) -> RGB:
    """The colour a fraction t of the way from a to b."""
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


def shade(c: RGB, f: float) -> RGB:
    """c with each channel scaled by f (capped at 255)."""
    return (min(255, round(c[0] * f)), min(255, round(c[1] * f)), min(255, round(c[2] * f)))


def sample_identity(rng: np.random.Generator) -> Identity:
    """Draw one person; the probabilities roughly follow CelebA's label frequencies and correlations."""
    male = bool(rng.random() < 0.42)
    young = bool(rng.random() < 0.77)
    tone = rng.random() ** 1.5  # skewed to light skin, as in CelebA
    skin = mix(_SKIN_LIGHT, _SKIN_MID, tone / 0.6) if tone < 0.6 else mix(_SKIN_MID, _SKIN_DARK,
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
