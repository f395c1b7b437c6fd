"""The backbone LightningModule trains for real, checkpoints, resumes after a stop, and exports safetensors."""

import shutil
from pathlib import Path

import mlflow
import pytest
import torch

from chatface.config import load_config
from chatface.pretrain import pretrain_backbone
from diffusion import DiffAEPipeline
from lightning_modules.backbone import BackbonePretraining
from networks.diffae import DiffAE, preset
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

    with pytest.raises(ValueError, match="another run_name") as error:  # MLflow keeps one value per parameter
        pretrain_backbone(_config(tmp_path, 6, "backbone.pretrain.lr=0.5"))
    assert "'lr'" in str(error.value) and step_of(tmp_path / "backbone") == 4, "refused before training a step"

    branch = tmp_path / "branch" / "synth"  # a run branched off a copy of another's checkpoint
    branch.mkdir(parents=True)
    shutil.copy(tmp_path / "backbone" / "synth" / "last.ckpt", branch)
    pretrain_backbone(_config(tmp_path, 6, "backbone.pretrain.lr=0.5", "backbone.pretrain.run_name=branch"))
    assert step_of(tmp_path / "branch") == 6 and sorted(p.name for p in branch.glob("*.ckpt")) == ["last.ckpt"]


def step_of(run: Path) -> int:
    return torch.load(run / "synth" / "last.ckpt", map_location="cpu", weights_only=True)["global_step"]


@pytest.mark.slow
def test_fine_tune_starts_from_weights_and_trains_the_attribute_probe_and_edit_following(tmp_path):
    """With one step of encoder warm-up first: the switch to joint training happens inside a real fit."""
    start = pretrain_backbone(_config(tmp_path, 1, f"backbone.weights={tmp_path}/stage1.safetensors"))
    tuned = pretrain_backbone(_config(tmp_path, 3, f"backbone.pretrain.init_weights={start}",
                                      "backbone.pretrain.attribute_weight=1.0", "backbone.pretrain.edit_weight=1.0",
                                      "backbone.pretrain.encoder_lr_scale=10", "backbone.pretrain.run_name=finetune",
                                      "backbone.pretrain.trajectory_weight=1.0", "backbone.pretrain.trajectory_faces=2",
                                      "backbone.pretrain.trajectory_steps=3",
                                      "backbone.pretrain.encoder_warmup_steps=1", "trainer.log_every_n_steps=1"))

    checkpoint = torch.load(tmp_path / "finetune" / "synth" / "last.ckpt", map_location="cpu", weights_only=True)
    assert "attribute_probe.weight" in checkpoint["state_dict"], "the probe trains with the backbone"
    denoiser, semantic = checkpoint["optimizer_states"][0]["param_groups"]
    assert semantic["lr"] == pytest.approx(10 * denoiser["lr"]), "the encoder and probe learn 10x faster"
    before, after = load_backbone(start)[0], load_backbone(tuned)[0]
    assert before.state_dict().keys() == after.state_dict().keys(), "the exported network has no probe in it"
    before, after = dict(before.named_parameters()), dict(after.named_parameters())  # not BatchNorm statistics
    drift = max((after[k] - before[k]).abs().max().item() for k in before)
    assert 0 < drift < 0.1, "fine-tuning moves the starting weights a little, it does not start over"
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["chatface"])
    assert sorted(runs["tags.mlflow.runName"]) == ["backbone", "finetune"], "each stage is its own MLflow run"
    finetune = runs.run_id[runs["tags.mlflow.runName"] == "finetune"].item()
    for loss in ("train/attribute_probe", "train/edit_following", "train/trajectory_edit"):
        assert mlflow.tracking.MlflowClient().get_metric_history(finetune, loss), loss


def test_a_new_encoder_can_start_under_a_trained_denoiser():
    torch.manual_seed(0)
    trained = DiffAE(preset("synth64"))
    module = BackbonePretraining("synth64_resnet")
    fresh_encoder = {k: v.clone() for k, v in module.model.encoder.state_dict().items()}
    module.start_from(trained, with_encoder=False)
    for model in (module.model, module.ema_model):
        for name, value in trained.state_dict().items():
            if not name.startswith("encoder."):
                assert torch.equal(model.state_dict()[name], value), name
        for name, value in model.encoder.state_dict().items():
            assert torch.equal(value, fresh_encoder[name]), name


def test_the_encoder_warmup_trains_only_the_encoder_and_probe():
    torch.manual_seed(0)
    module = BackbonePretraining("synth64_tiny", attribute_weight=1.0, encoder_warmup_steps=5)
    batch = {"image": torch.rand(4, 3, 64, 64) * 2 - 1, "labels": torch.randint(0, 2, (4, 25))}
    module.training_step(batch, 0).backward()
    for name, p in module.model.named_parameters():
        assert (p.grad is not None) == name.startswith("encoder."), name
    assert module.attribute_probe.weight.grad is not None


def test_an_encoder_warmup_without_the_probe_is_refused():
    with pytest.raises(ValueError, match="attribute_weight"):
        BackbonePretraining("synth64_tiny", encoder_warmup_steps=5)


@pytest.mark.parametrize("edit_min_t", [-1, 1000])
def test_an_edit_noise_floor_outside_the_schedule_is_refused(edit_min_t):
    with pytest.raises(ValueError, match=r"edit_min_t.*\[0, 1000\)"):
        BackbonePretraining("synth64_tiny", edit_weight=1.0, edit_min_t=edit_min_t)


def test_the_trajectory_edit_loss_trains_the_denoiser_through_the_whole_walk_and_leaves_the_encoder():
    torch.manual_seed(0)
    module = BackbonePretraining("synth64", trajectory_weight=1.0, trajectory_faces=2, trajectory_steps=2)
    faces, flipped = torch.rand(3, 3, 64, 64) * 2 - 1, torch.rand(3, 3, 64, 64) * 2 - 1
    loss = module._trajectory_edit_loss(faces, flipped)
    loss.backward()
    grads = {name: p.grad for name, p in module.model.named_parameters()}
    assert loss.item() > 0
    assert all(g is None for name, g in grads.items() if name.startswith("encoder."))
    assert any(g is not None and g.abs().sum() > 0 for name, g in grads.items() if not name.startswith("encoder."))


def test_a_walk_that_ignores_a_small_edit_costs_as_much_as_the_edit_not_its_share_of_the_image(monkeypatch):
    """A smile owns a few dozen of 4,096 pixels: over the whole image, a decode without it would cost almost 0."""
    module = BackbonePretraining("synth64_tiny", trajectory_weight=1.0, trajectory_faces=2, trajectory_steps=2)
    faces = torch.zeros(2, 3, 64, 64)
    flipped = faces.clone()
    flipped[:, :, 30:32, 30:32] = 1.0  # the edit: 4 pixels
    monkeypatch.setattr(DiffAEPipeline, "decode", lambda self, x_T, z_sem, steps: faces.clone())
    loss = module._trajectory_edit_loss(faces, flipped)
    assert loss.item() == pytest.approx(1.0 + 4 / 4096)


def _batchnorm_statistics(module: BackbonePretraining) -> list[torch.Tensor]:
    return [b.clone() for name, b in module.model.encoder.named_buffers() if "running" in name]


def test_the_trajectory_walk_starts_from_the_z_sem_an_edit_uses_and_leaves_the_batchnorm_statistics():
    """Editing encodes with BatchNorm's running statistics; the walk must too, even while the module trains."""
    torch.manual_seed(0)
    module = BackbonePretraining("synth64_resnet", trajectory_weight=1.0, trajectory_faces=2, trajectory_steps=2)
    module.train()
    faces = torch.rand(2, 3, 64, 64) * 2 - 1
    before = _batchnorm_statistics(module)
    with torch.no_grad():
        walked = module._editing_z_sem(faces)
        module._trajectory_edit_loss(faces, faces.flip(-1))
    assert all(torch.equal(a, b) for a, b in zip(before, _batchnorm_statistics(module)))
    assert module.model.encoder.training, "the encoder goes on training"
    with torch.no_grad():
        module.model.encoder.eval()
        edited = module.model.encode(faces)
        module.model.encoder.train()
        in_training = module.model.encode(faces)
    assert not torch.allclose(in_training, edited), "batch statistics differ from the running ones"
    assert torch.allclose(walked, edited, atol=1e-6)


def test_a_frozen_encoder_keeps_its_batchnorm_statistics_through_training_steps():
    torch.manual_seed(0)
    module = BackbonePretraining("synth64_resnet", encoder_lr_scale=0.0)
    module.train()
    batch = {"image": torch.rand(4, 3, 64, 64) * 2 - 1}
    before = _batchnorm_statistics(module)
    module.on_train_batch_start(batch, 0)
    module.training_step(batch, 0)
    assert all(torch.equal(a, b) for a, b in zip(before, _batchnorm_statistics(module)))


def test_the_edit_following_loss_draws_its_noise_levels_from_edit_min_t_up():
    torch.manual_seed(0)
    module = BackbonePretraining("synth64_tiny", edit_weight=1.0, edit_min_t=900)
    levels = []
    module.model.register_forward_pre_hook(lambda model, args: levels.append(args[1]))
    faces, flipped = torch.rand(8, 3, 64, 64) * 2 - 1, torch.rand(8, 3, 64, 64) * 2 - 1
    loss = module._edit_following_loss(faces, flipped)
    assert loss.item() > 0 and len(levels) == 1
    assert levels[0].shape == (4,) and (levels[0] >= 900).all(), "half the batch, noised from t = 900 up"
