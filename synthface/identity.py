"""Identity: the continuous face parameters that make one person, drawn from a seeded identity id.

Lengths are in units of the image side. Identity is what an edit must keep; attributes and the scene are not part
of it.
"""

from dataclasses import dataclass, fields

import numpy as np

# name: (low, high) of the uniform prior
RANGES = {
    "face_width": (0.185, 0.235),
    "face_height": (0.245, 0.295),
    "jaw": (0.70, 1.0),  # width of the lower face relative to the upper face
    "skin_tone": (0.0, 1.0),  # light to dark
    "skin_warmth": (0.0, 1.0),
    "eye_size": (0.030, 0.043),
    "eye_aspect": (0.45, 0.7),
    "eye_spacing": (0.072, 0.098),
    "eye_height": (-0.045, -0.01),
    "iris_shade": (0.0, 1.0),
    "brow_gap": (0.028, 0.045),
    "brow_thickness": (0.009, 0.018),
    "brow_arch": (0.0, 0.012),
    "brow_tilt": (-0.008, 0.008),
    "brow_darkness": (0.0, 1.0),
    "nose_length": (0.055, 0.095),
    "nose_width": (0.022, 0.040),
    "mouth_width": (0.055, 0.085),
    "mouth_y": (0.125, 0.160),
    "lip_thickness": (0.009, 0.017),
    "ear_y": (-0.03, 0.02),
    "ear_size": (0.032, 0.046),
    "hairline": (0.0, 1.0),
    "hair_shade": (0.0, 1.0),
    "neck_width": (0.075, 0.10),
}
_LOW, _HIGH = (np.array(bounds) for bounds in zip(*RANGES.values()))


@dataclass(frozen=True)
class Identity:
    face_width: float
    face_height: float
    jaw: float
    skin_tone: float
    skin_warmth: float
    eye_size: float
    eye_aspect: float
    eye_spacing: float
    eye_height: float
    iris_shade: float
    brow_gap: float
    brow_thickness: float
    brow_arch: float
    brow_tilt: float
    brow_darkness: float
    nose_length: float
    nose_width: float
    mouth_width: float
    mouth_y: float
    lip_thickness: float
    ear_y: float
    ear_size: float
    hairline: float
    hair_shade: float
    neck_width: float

    @classmethod
    def from_id(cls, identity_id: int) -> "Identity":
        rng = np.random.default_rng([identity_id, 0x1D])
        # One draw of all fields gives the same values as one draw per field in this order.
        return cls(**dict(zip(RANGES, rng.uniform(_LOW, _HIGH).tolist())))

    def as_vector(self) -> np.ndarray:
        return np.array([getattr(self, f.name) for f in fields(self)])
