"""`chatface train attr=<name>`: train one attribute's mapper on cached latents, log it to MLflow, export it.

A run lives in runs/mappers/<world>/<attr>/runs/<settings digest>/: the same settings (mapper, seed, backbone and
judge files) resume the same run (and MLflow run), other settings start a new one. It holds last.ckpt,
best.safetensors (with mapper.keep_best: chatface/best_validation.py), mapper.safetensors (the kept weights + how
they were trained), mapper.yaml, grid.png (before/after on validation faces) and metrics.json, all but the first two
also MLflow artifacts; the finished mapper is copied to runs/mappers/<world>/<attr>/, where the editor finds it.
"""

import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, Dataset

from chatface.backbone_eval import backbone_pipeline
from chatface.best_validation import BestValidation, validation_metrics
from chatface.catalog import default_catalog
from chatface.edit_grid import before_after_grid
from chatface.editor import mapper_dir
from chatface.pretrain_judges import KINDS
from chatface.resume import last_checkpoint, last_checkpoint_callback
from chatface.tracking import mlflow_logger
from datamodules.image_folder import ImageFolderDataset, split_folder
from datamodules.latent_cache import LatentDataset, cached_latents, file_digest
from datamodules.synthface import SynthFaceDataset
from diffusion import DiffAEPipeline
from lightning_modules.mapper import AttributeMapping
from networks.judges.loading import load_judges
from networks.mapper_checkpoint import save_mapper


def learnt_from(cfg: DictConfig) -> str:
    """The backbone and judge files an edit is learnt from, as digests (a name that is no file, as itself): a new
    file at the same path is another setting."""
    files = [cfg.backbone.weights, *(cfg.judges[kind] for kind in KINDS)]
    return " ".join(file_digest(name) if name and Path(name).is_file() else repr(name) for name in files)


def settings_run_dir(cfg: DictConfig, attr: str) -> Path:
    """The run folder of these mapper settings on this backbone with these judges: a new backbone or judge file
    starts a new run rather than resuming one trained on the old."""
    settings = OmegaConf.to_yaml(cfg.mapper) + f"seed={cfg.trainer.seed} files={learnt_from(cfg)}"
    return mapper_dir(cfg, attr) / "runs" / hashlib.sha256(settings.encode()).hexdigest()[:10]


EXPORTED = ("mapper.safetensors", "mapper.yaml", "metrics.json", "grid.png")


def mapper_faces(cfg: DictConfig, split: str) -> Dataset:
    """The mapper's train, val or test faces: SynthFace (one face per identity), or the photos of
    data.image_folder split into disjoint parts."""
    counts = {"train": cfg.mapper.train_faces, "val": cfg.mapper.val_faces, "test": cfg.mapper.test_faces}
    if not cfg.data.image_folder:
        return SynthFaceDataset(split, counts[split], counts[split], cfg.world.image_size)
    return ImageFolderDataset(split_folder(Path(cfg.data.image_folder), counts)[split], cfg.world.image_size)


def mapper_latents(cfg: DictConfig, pipe: DiffAEPipeline, split: str) -> dict[str, torch.Tensor]:
    """Cached latents of the mapper's train, val or test faces."""
    faces = mapper_faces(cfg, split)
    return cached_latents(pipe, cfg.backbone.weights, faces, cfg.mapper.steps, cfg.mapper.invert_refine,
                          Path(cfg.output_dir) / "latents")


def mapping_module(cfg: DictConfig, attr: str, train_z: torch.Tensor) -> AttributeMapping:
    """The attribute's untrained mapping module; a whitened mapper is fitted to the training faces' z_sem."""
    entry, m = default_catalog()[attr], cfg.mapper
    module = AttributeMapping(attr, entry.source, entry.target, train_z.shape[1], m.width, m.depth, m.lr,
                              m.lambda_dir, m.lambda_id, m.lambda_pre, m.sms.value, m.sms_param, m.steps,
                              m.grad_checkpoint, m.whiten, m.direction_loss.value, m.direction_target,
                              m.lr_schedule.value)
    if m.whiten:
        module.mapper.fit_whitening(train_z)
    return module


def train_mapper(cfg: DictConfig, attr: str, run_dir: Path | None = None, logger: MLFlowLogger | None = None,
                 callbacks: Sequence[Callback] = ()) -> dict[str, float]:
    """Train (or resume) the mapper of `attr` and return its validation metrics. A sweep passes its own run
    directory, a logger for a nested MLflow run and a pruning callback; without a run directory the finished
    mapper also becomes the attribute's current one."""
    default_catalog()[attr]  # an unknown attribute fails here, with suggestions, before anything is computed
    L.seed_everything(cfg.trainer.seed)
    publish = run_dir is None
    run_dir = run_dir or settings_run_dir(cfg, attr)
    logger = logger or mlflow_logger(cfg, f"mapper-{attr}", run_dir)
    pipe, judges = backbone_pipeline(cfg), load_judges(cfg.judges)
    train, val = mapper_latents(cfg, pipe, "train"), mapper_latents(cfg, pipe, "val")
    module = mapping_module(cfg, attr, train["z"]).attach(pipe, judges)
    m = cfg.mapper
    best = BestValidation(run_dir, cfg.sweep, m.goals) if m.keep_best else None
    trainer = L.Trainer(
        max_steps=m.max_steps, accelerator=cfg.trainer.accelerator, devices=cfg.trainer.devices,
        strategy=cfg.trainer.strategy, precision=cfg.trainer.precision, logger=logger,
        log_every_n_steps=cfg.trainer.log_every_n_steps, val_check_interval=min(m.val_every, m.max_steps),
        check_val_every_n_epoch=None, num_sanity_val_steps=0,
        callbacks=[last_checkpoint_callback(run_dir, m.checkpoint_every), *filter(None, [best]), *callbacks],
    )
    trainer.fit(module, DataLoader(LatentDataset(train), m.batch_size, shuffle=True, drop_last=True),
                DataLoader(LatentDataset(val), 32), ckpt_path=last_checkpoint(run_dir))
    if best and best.path.exists() and best.best_metrics:
        metrics = best.restore(module)
        logger.log_metrics({"kept_step": best.best_step})
    else:
        metrics = _last_metrics(trainer, module, val)
    if trainer.is_global_zero:
        _export(cfg, attr, module, val, run_dir, metrics, logger)
        if publish:
            for name in EXPORTED:
                shutil.copy2(run_dir / name, mapper_dir(cfg, attr) / name)
    return metrics


def _last_metrics(trainer: L.Trainer, module: AttributeMapping, val: dict) -> dict[str, float]:
    scores = trainer.callback_metrics
    if not any(key.startswith("val/") for key in scores):  # a finished run resumed: fit validated nothing
        scores = trainer.validate(module, DataLoader(LatentDataset(val), 32), verbose=False)[0]
    return validation_metrics(scores)


def _export(cfg: DictConfig, attr: str, module: AttributeMapping, val: dict, run_dir: Path,
            metrics: dict[str, float], logger: MLFlowLogger) -> None:
    info = {**{k: module.hparams[k] for k in ("latent_dim", "width", "depth", "sms", "sms_param", "steps")},
            "attribute": attr, "world": cfg.world.name, "backbone": file_digest(cfg.backbone.weights)}
    save_mapper(module.mapper, run_dir / "mapper.safetensors", info)
    (run_dir / "mapper.yaml").write_text(OmegaConf.to_yaml(cfg.mapper))
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    with torch.no_grad():
        count = min(8, len(val["z"]))
        edited, _ = module.edit(val["z"][:count], val["x_T"][:count])
    before_after_grid(val["recon"][:count], edited, run_dir / "grid.png")
    for name in EXPORTED:
        logger.experiment.log_artifact(logger.run_id, str(run_dir / name))
