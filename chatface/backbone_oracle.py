"""The best any z_sem edit can do with a given backbone: the oracle edit.

A mapper edits z_sem and keeps the face's inverted x_T. The oracle replaces z_sem with that of the same face
rendered with the attribute switched on (same identity, same scene), decodes with the face's own x_T, and asks the
attribute judge whether the attribute shows. Where it does not, the decoder follows x_T rather than z_sem for that
attribute, and no mapper trained on this backbone can make it appear.
"""

import torch
from omegaconf import DictConfig

from chatface.backbone_eval import backbone_pipeline, held_out_faces
from datamodules.synthface import face_labels, render_faces
from metrics.attribute_edit import AttributeEditAccuracy
from networks.judges.loading import load_judges

EDITED_ATTRIBUTES = ("smile", "glasses", "curly_hair", "blond_hair", "makeup", "beard")  # issue #5's six


@torch.inference_mode()
def oracle_edit_success(cfg: DictConfig, faces: int = 64, steps: int = 8,
                        attributes: tuple[str, ...] = EDITED_ATTRIBUTES) -> dict[str, float]:
    """Per attribute: among held-out faces lacking it, the share whose oracle edit the attribute judge sees."""
    if not cfg.judges.attributes:
        raise ValueError("the oracle edit needs an attribute judge (judges.attributes); the synth world has one")
    pipe, judge = backbone_pipeline(cfg), load_judges(cfg.judges).attributes
    dataset = held_out_faces(cfg, faces)
    result = {}
    for attr in attributes:
        lacking = [face for face in map(dataset.face, range(faces)) if attr not in face.attributes]
        source, _ = render_faces(lacking, cfg.world.image_size)
        target, _ = render_faces([face.with_attribute(attr) for face in lacking], cfg.world.image_size)
        x_T = pipe.invert(source, pipe.encode(source), steps, cfg.backbone.invert_refine)
        oracle = pipe.decode(x_T, pipe.encode(target), steps)
        success = AttributeEditAccuracy(judge, attr)
        success.update(source, oracle, source_labels=face_labels(lacking))
        result[attr] = round(success.compute().item(), 3)
    return result
