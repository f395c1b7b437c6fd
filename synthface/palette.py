"""Colours of skin, hair, eyes and lips as functions of identity and attributes."""

import numpy as np

from synthface.canvas import Colour
from synthface.identity import Identity

HAIR = {
    "black_hair": (28, 24, 24), "brown_hair": (100, 62, 36), "blond_hair": (226, 190, 112),
    "red_hair": (172, 64, 28), "grey_hair": (176, 176, 180),
}
EYES = {"blue_eyes": (58, 112, 196), "green_eyes": (64, 146, 74), "brown_eyes": (104, 62, 30)}
_LIGHT_SKIN, _DARK_SKIN = np.array([242, 208, 182]), np.array([118, 78, 54])


def _rgb(v) -> Colour:
    return tuple([min(255, max(0, round(float(c)))) for c in v])


def shade(colour: Colour, factor: float) -> Colour:
    return _rgb(c * factor for c in colour)


def mix(a: Colour, b: Colour, t: float) -> Colour:
    return _rgb(x * (1 - t) + y * t for x, y in zip(a, b))


def skin(identity: Identity, active: frozenset[str]) -> Colour:
    base = _LIGHT_SKIN * (1 - identity.skin_tone) + _DARK_SKIN * identity.skin_tone
    base = base * np.array([1.0 + 0.04 * identity.skin_warmth, 1.0, 1.0 - 0.06 * identity.skin_warmth])
    if "tanned" in active:
        base = base * np.array([0.86, 0.70, 0.52])
    if "pale" in active:
        base = base * 0.45 + np.array([250, 242, 238]) * 0.55
    return _rgb(base)


def hair(identity: Identity, active: frozenset[str]) -> Colour:
    name = next(n for n in HAIR if n in active)
    return shade(HAIR[name], 0.88 + 0.24 * identity.hair_shade)


def iris(identity: Identity, active: frozenset[str]) -> Colour:
    name = next(n for n in EYES if n in active)
    return shade(EYES[name], 0.85 + 0.3 * identity.iris_shade)


def brows(identity: Identity) -> Colour:
    return mix((92, 66, 46), (22, 17, 16), identity.brow_darkness)


def lips(identity: Identity) -> Colour:
    """Natural lip colour, from the identity's own skin: tanning and paleness stop at the lips."""
    return mix(shade(skin(identity, frozenset()), 0.85), (175, 80, 80), 0.35)
