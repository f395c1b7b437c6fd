"""SynthFace: a procedural face world with ground-truth identity, attributes and segmentation."""

from synthface.attributes import ATTRIBUTES, sample_attributes, to_labels, with_attribute
from synthface.classes import CLASS_NAMES, NUM_CLASSES, FaceClass
from synthface.face import Face, sample_face
from synthface.identity import Identity
from synthface.scene import Scene

__all__ = ["ATTRIBUTES", "CLASS_NAMES", "NUM_CLASSES", "Face", "FaceClass", "Identity", "Scene", "sample_attributes",
           "sample_face", "to_labels", "with_attribute"]
