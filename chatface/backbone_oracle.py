"""The best any z_sem edit can do with a given backbone: the oracle edit.

A mapper edits z_sem and keeps the face's inverted x_T. The oracle replaces z_sem with that of the same face
rendered with the attribute switched on (same identity, same scene), decodes with the face's own x_T, and asks the
attribute judge whether the attribute shows. Where it does not, the decoder follows x_T rather than z_sem for that
attribute, and no mapper trained on this backbone can make it appear.

`z_sem_following` looks one level deeper, without a judge: at a single noise level, how far the denoiser's
predicted x0 moves towards the attribute when only z_sem says it is there.
"""

import torch
from omegaconf import DictConfig

from chatface.backbone_eval import backbone_pipeline, held_out_faces
from datamodules.synthface import face_labels, render_faces
from metrics.attribute_edit import AttributeEditAccuracy
from metrics.changed_region import changed_pixels, changed_region_mse
from networks.judges.loading import load_judges

EDITED_ATTRIBUTES = ("smile", "glasses", "curly_hair", "blond_hair", "makeup", "beard")  # issue #5's six


def faces_lacking(cfg: DictConfig, attr: str, faces: int, scan: int) -> tuple[list, torch.Tensor, torch.Tensor]:
    """Up to `faces` of the first `scan` held-out faces that lack `attr`, and their renders without and with it."""
    dataset = held_out_faces(cfg, scan)
    lacking = [face for face in map(dataset.face, range(scan)) if attr not in face.attributes][:faces]
    source, _ = render_faces(lacking, cfg.world.image_size)
    target, _ = render_faces([face.with_attribute(attr) for face in lacking], cfg.world.image_size)
    return lacking, source, target


@torch.inference_mode()
def oracle_edit_success(cfg: DictConfig, faces: int = 64, steps: int = 8,
                        attributes: tuple[str, ...] = EDITED_ATTRIBUTES) -> dict[str, float]:
    """Per attribute: among held-out faces lacking it, the share whose oracle edit the attribute judge sees."""
    if not cfg.judges.attributes:
        raise ValueError("the oracle edit needs an attribute judge (judges.attributes); the synth world has one")
    pipe, judge = backbone_pipeline(cfg, "cpu"), load_judges(cfg.judges).attributes  # all on the CPU, as the judge
    result = {}
    for attr in attributes:
        lacking, source, target = faces_lacking(cfg, attr, faces, scan=faces)
        x_T = pipe.invert(source, pipe.encode(source), steps, cfg.backbone.invert_refine)
        oracle = pipe.decode(x_T, pipe.encode(target), steps)
        success = AttributeEditAccuracy(judge, attr)
        success.update(source, oracle, source_labels=face_labels(lacking))
        result[attr] = round(success.compute().item(), 3)
    return result


@torch.inference_mode()
def z_sem_following(cfg: DictConfig, faces: int = 16, levels: tuple[int, ...] = (900, 600, 300),
                    attributes: tuple[str, ...] = EDITED_ATTRIBUTES) -> dict[str, dict[str, float]]:
    """Per attribute and noise level t: x_t is noised from held-out faces lacking the attribute, z_sem is that of
    the same faces with it. Over the pixels the attribute changes, the share of the way from the face to the edited
    face that the predicted x0 goes, relative to the face's own z_sem: 1 follows z_sem, 0 follows x_t."""
    pipe = backbone_pipeline(cfg, "cpu")
    model, scheduler = pipe.model, pipe.scheduler
    result = {}
    for attr in attributes:
        lacking, source, target = faces_lacking(cfg, attr, faces, scan=4 * faces)
        changed = changed_pixels(source, target)
        z_source, z_target = pipe.encode(source), pipe.encode(target)
        result[attr] = {}
        for level in levels:
            t = torch.full((len(lacking),), level)
            noise = torch.randn(source.shape, generator=torch.Generator().manual_seed(level))
            x_t = scheduler.add_noise(source, noise, t)
            own, edited = (changed_region_mse(scheduler.predicted_x0(model(x_t, t, z), x_t, t), target, changed)
                           for z in (z_source, z_target))
            result[attr][f"t{level}"] = round(1 - (edited / own).item(), 3)
    return result
