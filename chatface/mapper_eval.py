"""How good is a mapper? Edit metrics on held-out test faces, and a grid over strength and step count."""

import time
from pathlib import Path

import torch
from omegaconf import DictConfig
from torchmetrics import MetricCollection

from chatface.catalog import default_catalog
from chatface.edit_grid import image_grid
from chatface.editor import Editor, FaceLatents, read_trained_mapper
from chatface.train_mapper import mapper_dir, mapper_latents
from datamodules.latent_cache import latent_batches
from metrics.edit_metrics import edit_metrics, edit_scores
from networks.judges.loading import load_judges


def evaluate_mapper(cfg: DictConfig, attr: str, strength: float = 1.0, mapper_path: str | None = None,
                    batch_size: int = 32) -> dict[str, float]:
    """edit_success, leakage, id, sc, sdir (and seconds per face) of `attr` at `strength` on the test faces, for
    the attribute's current mapper or the mapper file `mapper_path`."""
    find = (lambda name: read_trained_mapper(mapper_path, cfg)) if mapper_path else None
    editor, judges = Editor.from_config(cfg, [attr], find), load_judges(cfg.judges)
    entry, steps = default_catalog()[attr], cfg.mapper.steps
    test = mapper_latents(cfg, editor.pipe, "test")
    metrics = MetricCollection(edit_metrics(judges, attr, entry.source, entry.target))
    start = time.perf_counter()
    for part in latent_batches(test, batch_size):
        faces = FaceLatents(part["image"], part["z"], {steps: part["x_T"]})
        metrics.update(part["recon"], editor.edit(faces, [(attr, strength)], steps), source_labels=part["labels"])
    seconds = (time.perf_counter() - start) / len(test["z"])
    return {"attr": attr, "strength": strength, "steps": steps, "faces": len(test["z"]),
            **edit_scores(metrics), "edit_seconds_per_face": seconds}


def strength_steps_grid(cfg: DictConfig, attr: str, strengths=(0.0, 0.5, 1.0, 1.5, 2.0), steps=(4, 8, 16),
                        faces: int = 2) -> Path:
    """Rows: each test face at each step count T; columns: the source, then the edit at each strength."""
    editor = Editor.from_config(cfg, [attr])
    test = mapper_latents(cfg, editor.pipe, "test")
    latents = editor.latents(test["image"][:faces])
    rows = []
    for count in steps:
        edits = [editor.edit(latents, [(attr, s)], count) for s in strengths]
        rows += [torch.stack([test["image"][i], *(edit[i] for edit in edits)]) for i in range(faces)]
    return image_grid(torch.cat(rows), len(strengths) + 1, mapper_dir(cfg, attr) / "strength_steps.png")
