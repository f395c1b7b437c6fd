"""`chatface pretrain judges`: train the four synth judges on a rendered SynthFace cache and export them.

Each judge resumes from runs/judges/<kind>/last.ckpt and logs to MLflow; a judge whose training finished is not
trained again, only exported.
"""

from pathlib import Path

import lightning as L
from omegaconf import DictConfig
from torch.utils.data import DataLoader

from chatface.resume import last_checkpoint, last_checkpoint_callback
from chatface.tracking import mlflow_logger
from datamodules.synthface import SynthFaceDataset
from datamodules.synthface_cache import CachedSynthFace, render_cache
from lightning_modules.attribute_training import AttributeTraining
from lightning_modules.clip_training import ClipTraining, negatives_per_positive
from lightning_modules.identity_training import IdentityTraining
from lightning_modules.judge_training import JudgeTraining
from lightning_modules.parser_training import ParserTraining, balanced_class_weights
from synthface import ATTRIBUTES, NUM_CLASSES

KINDS = ("clip", "identity", "parser", "attributes")  # the mapper needs the first two soonest


def judge_sizes(kind: str, image_size: int, p: DictConfig) -> dict:
    """The sizes of a `kind` judge's network; `p`: the judges' pretraining config."""
    return {
        "clip": dict(image_size=image_size, embed_dim=128, width=128, layers=3, tower=p.clip_tower.value,
                     resnet_width=p.clip_resnet_width),
        "identity": dict(out_dim=128, width=p.identity_width),
        "parser": dict(num_classes=NUM_CLASSES, width=p.parser_width),
        "attributes": dict(out_dim=len(ATTRIBUTES), width=24),
    }[kind]


def judge_cache(cfg: DictConfig, split: str, counterfactual: bool = False) -> Path:
    p = cfg.judges.pretrain
    faces, identities = (p.train_faces, p.train_identities) if split == "train" else (p.val_faces, p.val_faces // 2)
    dataset = SynthFaceDataset(split, faces, identities, cfg.world.image_size, counterfactual)
    return render_cache(dataset, Path(cfg.output_dir) / "judges" / "cache")


def _module(cfg: DictConfig, kind: str, train_set: CachedSynthFace) -> JudgeTraining:
    p = cfg.judges.pretrain
    args = dict(sizes=judge_sizes(kind, cfg.world.image_size, p), lr=p.lr)
    if kind == "identity":
        return IdentityTraining(num_identities=p.train_identities, margin_warmup_steps=p.identity_margin_warmup,
                                **args)
    if kind == "clip":
        balance = negatives_per_positive(train_set.labels) if p.clip_prompt_balance else None
        return ClipTraining(direction_weight=p.clip_direction_weight, prompt_pos_weight=balance, **args)
    if kind == "parser":
        weights = balanced_class_weights(train_set.masks, NUM_CLASSES, p.parser_class_balance)
        return ParserTraining(class_weights=weights, **args)
    return AttributeTraining(**args)


def pretrain_judge(cfg: DictConfig, kind: str, train: Path, val: Path) -> Path:
    p = cfg.judges.pretrain
    L.seed_everything(cfg.trainer.seed)
    run_dir = Path(cfg.output_dir) / "judges" / kind
    train_set = CachedSynthFace(train, negatives=3 if kind == "clip" else 0)
    module = _module(cfg, kind, train_set)
    val_set = CachedSynthFace(val)
    batch_size = p.clip_batch_size if kind == "clip" else p.batch_size
    trainer = L.Trainer(
        max_steps=p.steps[kind], accelerator=cfg.trainer.accelerator, devices=cfg.trainer.devices,
        log_every_n_steps=cfg.trainer.log_every_n_steps, val_check_interval=min(p.val_every, p.steps[kind]),
        check_val_every_n_epoch=None, num_sanity_val_steps=0, logger=mlflow_logger(cfg, f"judge-{kind}", run_dir),
        callbacks=[last_checkpoint_callback(run_dir, 100)],
    )
    trainer.fit(module, DataLoader(train_set, batch_size, shuffle=True, drop_last=True),
                DataLoader(val_set, len(val_set)), ckpt_path=last_checkpoint(run_dir))
    module.export(cfg.judges[kind])
    return Path(cfg.judges[kind])


def pretrain_judges(cfg: DictConfig, kinds: tuple[str, ...] = KINDS) -> list[Path]:
    """The CLIP judge learns from counterfactual pairs (when its direction loss is on), the others from faces."""
    paths = []
    for kind in kinds:
        counterfactual = kind == "clip" and cfg.judges.pretrain.clip_direction_weight > 0
        train, val = (judge_cache(cfg, split, counterfactual) for split in ("train", "val"))
        paths.append(pretrain_judge(cfg, kind, train, val))
    return paths
