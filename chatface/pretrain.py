"""Entry points that pretrain the synth-world networks: the backbone (and, later, the judges)."""

from pathlib import Path

import lightning as L
from omegaconf import DictConfig

from chatface.resume import last_checkpoint, last_checkpoint_callback
from chatface.tracking import mlflow_logger
from datamodules.synthface import SynthFaceDataModule
from lightning_modules.backbone import BackbonePretraining
from networks.diffae.checkpoint import load_backbone, save_backbone
from synthface.attributes import ATTRIBUTES


def synthface_datamodule(cfg: DictConfig, counterfactual: bool = False) -> SynthFaceDataModule:
    d = cfg.data
    return SynthFaceDataModule(cfg.world.image_size, d.batch_size, d.num_workers, d.train_identities,
                               d.train_samples, d.val_faces, d.test_faces, counterfactual,
                               tuple(d.flip_attributes) or ATTRIBUTES)


def pretrain_backbone(cfg: DictConfig) -> Path:
    """Train (or resume) the backbone, then export its EMA weights to `backbone.weights`."""
    L.seed_everything(cfg.trainer.seed)
    p = cfg.backbone.pretrain
    run_dir = Path(cfg.output_dir) / p.run_name / cfg.world.name
    module = BackbonePretraining(cfg.backbone.preset, cfg.backbone.prediction.value, p.lr, p.warmup_steps,
                                 p.ema_decay, cfg.trainer.channels_last, attribute_weight=p.attribute_weight,
                                 edit_weight=p.edit_weight, edit_min_t=p.edit_min_t,
                                 encoder_lr_scale=p.encoder_lr_scale, encoder_warmup_steps=p.encoder_warmup_steps,
                                 trajectory_weight=p.trajectory_weight, trajectory_faces=p.trajectory_faces,
                                 trajectory_steps=p.trajectory_steps)
    trainer = L.Trainer(
        max_steps=p.max_steps, accelerator=cfg.trainer.accelerator, devices=cfg.trainer.devices,
        strategy=cfg.trainer.strategy, precision=cfg.trainer.precision,
        log_every_n_steps=cfg.trainer.log_every_n_steps, val_check_interval=p.preview_every,
        check_val_every_n_epoch=None, limit_val_batches=1, num_sanity_val_steps=0,
        logger=mlflow_logger(cfg, p.run_name, run_dir),
        callbacks=[last_checkpoint_callback(run_dir, p.checkpoint_every)],
    )
    if p.init_weights and last_checkpoint(run_dir) is None:
        trained, _ = load_backbone(p.init_weights, cfg.backbone.preset)
        module.start_from(trained, with_encoder=p.init_encoder)
    trainer.fit(module, datamodule=synthface_datamodule(cfg, module.uses_counterfactual_pairs),
                ckpt_path=last_checkpoint(run_dir))
    if trainer.is_global_zero:
        save_backbone(module.ema_model, cfg.backbone.weights, cfg.backbone.preset, cfg.backbone.prediction.value)
    return Path(cfg.backbone.weights)
