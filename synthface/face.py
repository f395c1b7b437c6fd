"""A SynthFace sample: who (identity id), what (attributes) and where (scene seed), and its rendering."""

from dataclasses import dataclass, replace

import numpy as np

from synthface.attributes import sample_attributes, with_attribute
from synthface.identity import Identity
from synthface.render import render
from synthface.scene import Scene


@dataclass(frozen=True)
class Face:
    identity_id: int
    attributes: frozenset[str]
    seed: int

    def render(self, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        return render(Identity.from_id(self.identity_id), self.attributes, Scene.from_seed(self.seed), size)

    def with_attribute(self, name: str, on: bool = True) -> "Face":
        return replace(self, attributes=with_attribute(self.attributes, name, on))


def sample_face(identity_id: int, seed: int) -> Face:
    """The face of one identity with attributes and scene drawn from the seed."""
    return Face(identity_id, sample_attributes(np.random.default_rng([seed, 0xA7])), seed)
