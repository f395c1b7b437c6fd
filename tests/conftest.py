"""Shared fixtures: a tiny but real synth world (backbone, judges, data sizes) for end-to-end tests in seconds."""

from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from chatface.config import load_config
from networks.diffae import DiffAE, preset
from networks.diffae.checkpoint import save_backbone


def tiny_overrides(root: Path) -> list[str]:
    """Config overrides that put every output under `root` and shrink every size to seconds of CPU."""
    weights = root / "weights"
    return [
        f"output_dir={root / 'runs'}", f"tracking.tracking_uri=sqlite:///{root / 'runs' / 'mlflow.db'}",
        f"backbone.weights={weights / 'backbone.safetensors'}", "backbone.preset=synth64_tiny",
        "backbone.invert_refine=0", "mapper.invert_refine=0",
        *(f"judges.{kind}={weights / kind}.safetensors" for kind in ("clip", "identity", "parser", "attributes")),
        "judges.pretrain.train_faces=64", "judges.pretrain.train_identities=16", "judges.pretrain.val_faces=32",
        "judges.pretrain.batch_size=16", "judges.pretrain.clip_batch_size=16", "judges.pretrain.identity_width=24",
        # Two steps leave the ResNet tower near its initialisation, whose zeroed last BatchNorm in every block passes
        # image gradients of ~1e-10: a mapper trained through it for two steps would not move. The ViT passes them.
        "judges.pretrain.clip_tower=vit",
        *(f"judges.pretrain.steps.{kind}=2" for kind in ("clip", "identity", "parser", "attributes")),
        "mapper.train_faces=8", "mapper.val_faces=4", "mapper.test_faces=4", "mapper.batch_size=4",
        "mapper.width=32", "mapper.steps=2", "mapper.max_steps=2", "mapper.val_every=2",
        "leaderboard.chatface_max_steps=null",  # the leaderboard's ChatFace trains mapper.max_steps, as make train
        # RAdam's first steps are plain momentum steps, so they scale with the gradient: two of them on the synth
        # world's projection loss move a tiny mapper by less than one 8-bit level; the cosine's gradient is larger.
        "mapper.direction_loss=cosine",
        "trainer.log_every_n_steps=1",
    ]


def save_live_backbone(path: Path) -> Path:
    """A random tiny backbone whose zero-initialised layers (the last convolution of every residual block, the
    attention projections, the output convolution) are random too. In the tiny world's backbone they are zero, so
    its output does not depend on z_sem at all and a mapper gets exactly zero gradient: nothing could be learnt."""
    torch.manual_seed(0)
    model = DiffAE(preset("synth64_tiny"))
    with torch.no_grad():
        for parameter in model.parameters():
            if not parameter.any():
                parameter.normal_(0.0, 0.02)
    save_backbone(model, path, "synth64_tiny", "v")
    return path


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> list[str]:
    """Overrides for a synth world with a random tiny backbone and judges trained for two steps each."""
    from chatface.pretrain_judges import pretrain_judges

    root = tmp_path_factory.mktemp("tiny_world")
    overrides = tiny_overrides(root)
    cfg = load_config(overrides)
    save_backbone(DiffAE(preset("synth64_tiny")), cfg.backbone.weights, "synth64_tiny", "v")
    pretrain_judges(cfg)
    return overrides


@pytest.fixture
def tiny_cfg(tiny_world, tmp_path) -> DictConfig:
    """The tiny world with outputs (runs, MLflow store) in this test's own folder; weights are shared."""
    return load_config([*tiny_world, f"output_dir={tmp_path / 'runs'}",
                        f"tracking.tracking_uri=sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"])
