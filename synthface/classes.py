"""Segmentation classes of SynthFace, laid out like a face parser's."""

from enum import IntEnum


class FaceClass(IntEnum):
    BACKGROUND = 0
    SKIN = 1
    NOSE = 2
    EYES = 3
    IRISES = 4
    BROWS = 5
    EARS = 6
    EARRINGS = 7
    LIPS = 8
    MOUTH = 9
    TEETH = 10
    HAIR = 11
    BEARD = 12
    GLASSES = 13
    NECK = 14
    CLOTHES = 15


NUM_CLASSES = len(FaceClass)
CLASS_NAMES = tuple(c.name.lower() for c in FaceClass)
