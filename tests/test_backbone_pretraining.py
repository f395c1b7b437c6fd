"""The backbone LightningModule trains for real, checkpoints, resumes after a stop, and exports safetensors."""

import mlflow
import pytest
import torch

from chatface.config import load_config
from chatface.pretrain import pretrain_backbone
from networks.diffae.checkpoint import load_backbone


def _config(tmp_path, max_steps: int, *overrides: str):
    return load_config([
        "backbone.preset=synth64_tiny", f"backbone.pretrain.max_steps={max_steps}", "backbone.pretrain.warmup_steps=1",
        "backbone.pretrain.checkpoint_every=2", "backbone.pretrain.preview_every=2", "data.batch_size=4",
        "data.num_workers=0", "data.val_faces=4", f"output_dir={tmp_path}",
        f"tracking.tracking_uri=sqlite:///{tmp_path}/mlflow.db", f"backbone.weights={tmp_path}/backbone.safetensors",
        *overrides,  # last, so that they win
    ])


@pytest.mark.slow
def test_pretrain_resume_and_export(tmp_path):
    weights = pretrain_backbone(_config(tmp_path, 2))
    first, prediction = load_backbone(weights)
    assert prediction == "v"

    pretrain_backbone(_config(tmp_path, 4))  # a second call resumes from last.ckpt instead of starting over
    checkpoint = torch.load(tmp_path / "backbone" / "synth" / "last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == 4
    assert any(k.startswith("ema_model.") for k in checkpoint["state_dict"])
    second, _ = load_backbone(weights)
    changed = [not torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values())]
    assert any(changed)

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["chatface"])
    assert len(runs) == 1, "the resumed training continues the same MLflow run"
    history = mlflow.tracking.MlflowClient().get_metric_history(runs.run_id[0], "val/psnr_semantic")
    assert len(history) >= 2


@pytest.mark.slow
def test_fine_tune_starts_from_weights_and_trains_the_attribute_probe_and_edit_following(tmp_path):
    start = pretrain_backbone(_config(tmp_path, 1, f"backbone.weights={tmp_path}/stage1.safetensors"))
    tuned = pretrain_backbone(_config(tmp_path, 2, f"backbone.pretrain.init_weights={start}",
                                      "backbone.pretrain.attribute_weight=1.0", "backbone.pretrain.edit_weight=1.0",
                                      "backbone.pretrain.encoder_lr_scale=10", "backbone.pretrain.run_name=finetune",
                                      "trainer.log_every_n_steps=1"))

    checkpoint = torch.load(tmp_path / "finetune" / "synth" / "last.ckpt", map_location="cpu", weights_only=True)
    assert "attribute_probe.weight" in checkpoint["state_dict"], "the probe trains with the backbone"
    denoiser, semantic = checkpoint["optimizer_states"][0]["param_groups"]
    assert semantic["lr"] == pytest.approx(10 * denoiser["lr"]), "the encoder and probe learn 10x faster"
    before, after = load_backbone(start)[0].state_dict(), load_backbone(tuned)[0].state_dict()
    assert before.keys() == after.keys(), "the exported network has no probe in it"
    drift = max((after[k] - before[k]).abs().max().item() for k in before if before[k].is_floating_point())
    assert 0 < drift < 0.1, "fine-tuning moves the starting weights a little, it does not start over"
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["chatface"])
    assert sorted(runs["tags.mlflow.runName"]) == ["backbone", "finetune"], "each stage is its own MLflow run"
    finetune = runs.run_id[runs["tags.mlflow.runName"] == "finetune"].item()
    for loss in ("train/attribute_probe", "train/edit_following"):
        assert mlflow.tracking.MlflowClient().get_metric_history(finetune, loss), loss
