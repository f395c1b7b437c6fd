"""The best any z_sem edit can do with a given backbone: the oracle edit.

A mapper edits z_sem and keeps the face's inverted x_T. The oracle replaces z_sem with that of the same face
rendered with the attribute switched on (same identity, same scene), decodes with the face's own x_T, and scores
the result with the mapper's edit metrics. Where the attribute does not show, the decoder follows x_T rather than
z_sem for that attribute, and no mapper trained on this backbone can make it appear; where identity or leakage fall
short of the true edit's, the backbone, not the mapper, loses them.

`z_sem_following` looks one level deeper, without a judge: at a single noise level, how far the denoiser's
predicted x0 moves towards the attribute when only z_sem says it is there.
"""

import math

import torch
from omegaconf import DictConfig
from torchmetrics import MetricCollection

from chatface.backbone_eval import backbone_pipeline, held_out_faces
from chatface.catalog import default_catalog
from datamodules.synthface import face_labels, render_faces
from metrics.changed_region import changed_pixels, changed_region_mse
from metrics.directional_clip import text_shift
from metrics.edit_metrics import edit_metrics, edit_scores
from networks.judges.loading import load_judges

EDITED_ATTRIBUTES = ("smile", "glasses", "curly_hair", "blond_hair", "makeup", "beard")  # issue #5's six


def faces_lacking(cfg: DictConfig, attr: str, faces: int, scan: int) -> tuple[list, torch.Tensor, torch.Tensor]:
    """Up to `faces` of the first `scan` held-out faces that lack `attr`, and their renders without and with it."""
    dataset = held_out_faces(cfg, scan)
    lacking = [face for face in map(dataset.face, range(scan)) if attr not in face.attributes][:faces]
    source, _ = render_faces(lacking, cfg.world.image_size)
    target, _ = render_faces([face.with_attribute(attr) for face in lacking], cfg.world.image_size)
    return lacking, source, target


def _edit_scores(judges, attr: str, source: torch.Tensor, edited: torch.Tensor,
                 labels: torch.Tensor | None) -> dict:
    entry = default_catalog()[attr]
    metrics = MetricCollection(edit_metrics(judges, attr, entry.source, entry.target))
    metrics.update(source, edited, source_labels=labels)
    scores = {name: None if math.isnan(value) else round(value, 3) for name, value in edit_scores(metrics).items()}
    shift = text_shift(judges.clip, source, edited, judges.clip.text_direction(entry.source, entry.target))
    return scores | {"text_shift": round(shift.mean().item(), 3)}


def clip_sees_oracle(edits: dict[str, dict[str, dict[str, float]]]) -> dict[str, float | None]:
    """Per attribute, the oracle's text shift over the true edit's: how much of the attribute CLIP still sees as
    the backbone draws it. Near 0, CLIP is hardly moved by the decoded edit, and the direction loss pulls a mapper
    elsewhere even though the oracle shows the attribute (figures: weights/synth/backbone.md, session 22). The text
    direction is the judge's, so `judges.clip_templates` changes it."""
    return {attr: round(e["oracle"]["text_shift"] / e["true"]["text_shift"], 2) if e["true"]["text_shift"] > 0
            else None for attr, e in edits.items()}


@torch.inference_mode()
def oracle_edits(cfg: DictConfig, faces: int = 64, steps: int = 8,
                 attributes: tuple[str, ...] = EDITED_ATTRIBUTES) -> dict[str, dict[str, dict[str, float]]]:
    """Per attribute, on held-out faces lacking it, the edit metrics (edit_success, leakage, id, sc, sdir) and
    CLIP's text shift (metrics.directional_clip.text_shift) of
    `true`: the face rendered with the attribute against the face (what the judges give a perfect edit), and
    `oracle`: its z_sem decoded from the face's x_T against the face's reconstruction (what a mapper can reach);
    `semantic`: both z_sem decoded from the same random x_T, where nothing contradicts z_sem (whether the decoder
    draws the attribute from z_sem at all; "lacking" is the judge's verdict on the decode without it)."""
    if not cfg.judges.attributes:
        raise ValueError("the oracle edit needs an attribute judge (judges.attributes); the synth world has one")
    pipe, judges = backbone_pipeline(cfg, "cpu"), load_judges(cfg.judges)  # all on the CPU, as the judges
    result = {}
    for attr in attributes:
        lacking, source, target = faces_lacking(cfg, attr, faces, scan=faces)
        z_sem, labels = pipe.encode(source), face_labels(lacking)
        x_T = pipe.invert(source, z_sem, steps, cfg.backbone.invert_refine)
        z_target = pipe.encode(target)
        reconstruction, oracle = pipe.decode(x_T, z_sem, steps), pipe.decode(x_T, z_target, steps)
        noise = torch.randn(source.shape, generator=torch.Generator().manual_seed(0))
        result[attr] = {"true": _edit_scores(judges, attr, source, target, labels),
                        "oracle": _edit_scores(judges, attr, reconstruction, oracle, labels),
                        "semantic": _edit_scores(judges, attr, pipe.decode(noise, z_sem, steps),
                                                 pipe.decode(noise, z_target, steps), labels=None)}
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
