"""The editable attributes SynthFace renders, their exclusive groups and the regions each one owns.

A face's attributes are a frozenset of active names. Some attributes are exclusive (a face has one hair colour);
groups marked `required` always have exactly one member active, the others at most one.
"""

import numpy as np

from synthface.classes import FaceClass as C


class Group:
    def __init__(self, members: tuple[str, ...], required: bool, priors: tuple[float, ...]):
        self.members, self.required, self.priors = members, required, priors


GROUPS = {
    "expression": Group(("smile", "surprised", "sad", "angry"), False, (0.15, 0.1, 0.1, 0.1)),
    "glasses": Group(("glasses", "sunglasses"), False, (0.25, 0.12)),
    "hair_colour": Group(("black_hair", "brown_hair", "blond_hair", "red_hair", "grey_hair"), True, (0.2,) * 5),
    "eye_colour": Group(("blue_eyes", "green_eyes", "brown_eyes"), True, (1 / 3,) * 3),
    "skin": Group(("tanned", "pale"), False, (0.2, 0.2)),
}

# Independent attributes and how often a face has them.
SOLO_PRIORS = {
    "curly_hair": 0.3, "bangs": 0.3, "long_hair": 0.4, "makeup": 0.3, "eyeshadow": 0.25,
    "beard": 0.2, "mustache": 0.2, "wrinkles": 0.25, "earrings": 0.3,
}

ATTRIBUTES: tuple[str, ...] = tuple(m for g in GROUPS.values() for m in g.members) + tuple(SOLO_PRIORS)
ATTRIBUTE_INDEX = {name: i for i, name in enumerate(ATTRIBUTES)}
GROUP_OF = {m: name for name, g in GROUPS.items() for m in g.members}

# The member a required group falls back to when its active member is switched off.
FALLBACK = {"hair_colour": ("brown_hair", "black_hair"), "eye_colour": ("brown_eyes", "blue_eyes")}

_HAIR_COLOUR = frozenset({C.HAIR, C.BEARD})
# The segmentation classes whose pixels an attribute may change (in the map before or after the change).
OWNED_CLASSES: dict[str, frozenset[int]] = {
    "smile": frozenset({C.LIPS, C.MOUTH, C.TEETH}),
    "surprised": frozenset({C.LIPS, C.MOUTH, C.TEETH, C.BROWS}),
    "sad": frozenset({C.LIPS, C.MOUTH, C.TEETH, C.BROWS}),
    "angry": frozenset({C.LIPS, C.MOUTH, C.TEETH, C.BROWS}),
    "glasses": frozenset({C.GLASSES}),
    "sunglasses": frozenset({C.GLASSES}),
    **{m: _HAIR_COLOUR for m in GROUPS["hair_colour"].members},
    **{m: frozenset({C.IRISES}) for m in GROUPS["eye_colour"].members},
    "tanned": frozenset({C.SKIN, C.NOSE, C.EARS, C.NECK}),
    "pale": frozenset({C.SKIN, C.NOSE, C.EARS, C.NECK}),
    "curly_hair": frozenset({C.HAIR}),
    "bangs": frozenset({C.HAIR}),
    "long_hair": frozenset({C.HAIR}),
    "makeup": frozenset({C.LIPS}),
    "eyeshadow": frozenset({C.SKIN}),
    "beard": frozenset({C.BEARD}),
    "mustache": frozenset({C.BEARD}),
    "wrinkles": frozenset({C.SKIN}),
    "earrings": frozenset({C.EARRINGS}),
}


def check_name(name: str) -> str:
    if name not in ATTRIBUTE_INDEX:
        raise ValueError(f"SynthFace does not render {name!r}; it renders: {', '.join(ATTRIBUTES)}")
    return name


def sample_attributes(rng: np.random.Generator) -> frozenset[str]:
    active = []
    for group in GROUPS.values():
        priors = np.array(group.priors)
        if group.required:
            active.append(group.members[rng.choice(len(priors), p=priors / priors.sum())])
        else:
            pick = rng.choice(len(priors) + 1, p=np.append(priors, 1 - priors.sum()))
            if pick < len(priors):
                active.append(group.members[pick])
    active += [name for name, p in SOLO_PRIORS.items() if rng.random() < p]
    return frozenset(active)


def with_attribute(active: frozenset[str], name: str, on: bool = True) -> frozenset[str]:
    """Switch one attribute on or off, keeping its exclusive group consistent."""
    group_name = GROUP_OF.get(check_name(name))
    siblings = set(GROUPS[group_name].members) if group_name else {name}
    if on:
        return frozenset((active - siblings) | {name})
    if name not in active:
        return active
    if group_name in FALLBACK:
        default, second = FALLBACK[group_name]
        return frozenset((active - {name}) | {second if name == default else default})
    return active - {name}


def to_labels(active: frozenset[str]) -> np.ndarray:
    labels = np.zeros(len(ATTRIBUTES), dtype=np.float32)
    for name in active:
        labels[ATTRIBUTE_INDEX[name]] = 1.0
    return labels
