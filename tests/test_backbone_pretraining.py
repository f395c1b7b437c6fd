"""The backbone LightningModule trains for real, checkpoints, resumes after a stop, and exports safetensors."""

import mlflow
import pytest
import torch

from chatface.config import load_config
from chatface.pretrain import pretrain_backbone
from networks.diffae.checkpoint import load_backbone


def _config(tmp_path, max_steps: int):
    return load_config([
        "backbone.preset=synth64_tiny", f"backbone.pretrain.max_steps={max_steps}", "backbone.pretrain.warmup_steps=1",
        "backbone.pretrain.checkpoint_every=2", "backbone.pretrain.preview_every=2", "data.batch_size=4",
        "data.num_workers=0", "data.val_faces=4", f"output_dir={tmp_path}",
        f"tracking.tracking_uri=sqlite:///{tmp_path}/mlflow.db", f"backbone.weights={tmp_path}/backbone.safetensors",
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
