"""Scene: the nuisance factors of one image (background, lighting, pose jitter, colours of worn things).

Drawn from the sample seed; it never depends on identity or attributes, so toggling an attribute leaves it alone.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scene:
    background_top: tuple[int, int, int]
    background_bottom: tuple[int, int, int]
    light_direction: float  # radians, where the light comes from
    light_strength: float
    offset_x: float
    offset_y: float
    clothes: tuple[int, int, int]
    frame: tuple[int, int, int]
    round_frames: bool
    lipstick: tuple[int, int, int]
    eyeshadow: tuple[int, int, int]
    earring: tuple[int, int, int]

    @classmethod
    def from_seed(cls, seed: int) -> "Scene":
        rng = np.random.default_rng([seed, 0x5C])

        def colour(lo: int, hi: int) -> tuple[int, int, int]:
            return tuple(int(v) for v in rng.integers(lo, hi, size=3))

        return cls(
            background_top=colour(40, 230),
            background_bottom=colour(40, 230),
            light_direction=float(rng.uniform(0, 2 * np.pi)),
            light_strength=float(rng.uniform(0.0, 0.25)),
            offset_x=float(rng.uniform(-0.03, 0.03)),
            offset_y=float(rng.uniform(-0.025, 0.025)),
            clothes=colour(20, 235),
            frame=[(25, 25, 30), (120, 70, 30), (150, 150, 160), (140, 20, 30)][rng.integers(4)],
            round_frames=bool(rng.random() < 0.5),
            lipstick=(int(rng.integers(170, 225)), int(rng.integers(10, 50)), int(rng.integers(40, 90))),
            eyeshadow=[(120, 70, 150), (60, 110, 170), (150, 90, 60), (60, 130, 90)][rng.integers(4)],
            earring=[(230, 190, 60), (210, 210, 220), (60, 180, 200)][rng.integers(3)],
        )
