"""Training one attribute's mapper end to end on the tiny world: outputs, MLflow, resuming, the latent cache, DDP."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mlflow import MlflowClient
from omegaconf import OmegaConf
from PIL import Image

from chatface.backbone_eval import backbone_pipeline
from chatface.catalog import UnknownAttributeError
from chatface.config import load_config
from chatface.train_mapper import mapper_dir, mapper_latents, settings_run_dir, train_mapper
from datamodules.latent_cache import cached_latents, file_digest
from datamodules.synthface import SynthFaceDataset
from diffusion import DiffAEPipeline
from networks.diffae import DiffAE, preset
from conftest import save_live_backbone
from networks.diffae.checkpoint import save_backbone
from networks.mapper_checkpoint import load_mapper

pytestmark = pytest.mark.slow

FIVE_METRICS = ("sdir", "sc", "id", "edit_success", "leakage")
OUTPUTS = ("mapper.safetensors", "mapper.yaml", "metrics.json", "grid.png")


def world_cfg(tiny_world: list[str], root: Path, *overrides: str):
    """The tiny world (its judges) with the live backbone and outputs under `root`."""
    backbone = root / "live_backbone.safetensors"
    if not backbone.exists():
        save_live_backbone(backbone)
    return load_config([*tiny_world, f"backbone.weights={backbone}", f"output_dir={root / 'runs'}",
                        f"tracking.tracking_uri=sqlite:///{root / 'runs' / 'mlflow.db'}", *overrides])


def in_folder(folder: Path, function, *args, **kwargs):
    """Run with `folder` as the working directory: MLflow puts artifacts under ./mlruns of the working directory."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        return function(*args, **kwargs)


def global_step(run_dir: Path) -> int:
    return torch.load(run_dir / "last.ckpt", map_location="cpu", weights_only=True)["global_step"]


def snapshot(folder: Path) -> dict[str, int]:
    return {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}


@pytest.fixture(scope="module")
def trained(tiny_world, tmp_path_factory) -> SimpleNamespace:
    """The smile mapper trained once (two steps) in a folder of this module's own. The run (checkpoint, MLflow
    run id, exports) lives in its settings folder; the exports are also published in the attribute's folder."""
    root = tmp_path_factory.mktemp("mapper_training")
    cfg = world_cfg(tiny_world, root)
    metrics = in_folder(root, train_mapper, cfg, "smile")
    run_dir, published = settings_run_dir(cfg, "smile"), mapper_dir(cfg, "smile")
    return SimpleNamespace(root=root, cfg=cfg, metrics=metrics, run_dir=run_dir, published=published,
                           latents=Path(cfg.output_dir) / "latents", step=global_step(run_dir),
                           outputs={name: (published / name).read_bytes() for name in OUTPUTS},
                           mapper=load_mapper(published / "mapper.safetensors")[0])


@pytest.fixture(scope="module")
def resumed(trained) -> SimpleNamespace:
    """`train_mapper` called again with the same settings, as `make train ATTR=smile` run twice."""
    latents_before = snapshot(trained.latents)
    metrics = in_folder(trained.root, train_mapper, trained.cfg, "smile")
    return SimpleNamespace(metrics=metrics, latents_before=latents_before)


def test_training_returns_the_five_edit_metrics(trained):
    assert set(FIVE_METRICS) <= trained.metrics.keys()
    for name, value in trained.metrics.items():
        assert math.isfinite(value), name
        assert (-1.0 if name == "sdir" else 0.0) <= value <= 1.0, name


def test_training_writes_mapper_config_metrics_and_grid(trained):
    for name in OUTPUTS:
        assert (trained.run_dir / name).read_bytes() == trained.outputs[name], name  # published = the run's
    mapper, info = load_mapper(trained.published / "mapper.safetensors")
    assert info["attribute"] == "smile" and info["world"] == "synth"
    assert info["backbone"] == file_digest(trained.cfg.backbone.weights)
    assert (info["width"], info["depth"], info["steps"], info["sms"]) == (32, 4, 2, "none")
    assert OmegaConf.load(trained.published / "mapper.yaml").width == 32
    assert json.loads(trained.outputs["metrics.json"]) == trained.metrics
    with Image.open(trained.published / "grid.png") as grid:  # 4 validation faces: sources above their edits
        assert grid.size == (4 * 66 + 2, 2 * 66 + 2)


def test_training_changes_the_mapper_from_its_zero_start(trained):
    mapper = trained.mapper
    assert mapper.layers[-1].weight.abs().sum() > 0  # the last layer starts at zero
    z = torch.randn(4, mapper.layers[0].weight.shape[1])
    assert mapper(z).abs().sum() > 0


def test_training_logs_params_losses_metrics_and_artifacts_to_mlflow(trained):
    client = MlflowClient(trained.cfg.tracking.tracking_uri)
    run_id = (trained.run_dir / "mlflow_run_id").read_text().strip()
    run = client.get_run(run_id)
    assert run.info.run_name == "mapper-smile"
    params = run.data.params
    assert params["attribute"] == "smile" and float(params["lr"]) == 20.0 and params["sms"] == "none"
    assert {"lambda_dir", "lambda_id", "lambda_pre", "width", "steps"} <= params.keys()
    assert len(client.get_metric_history(run_id, "train/loss")) == 2  # one per step
    assert {f"val/{name}" for name in FIVE_METRICS} <= run.data.metrics.keys()
    artifacts = {artifact.path for artifact in client.list_artifacts(run_id)}
    assert set(OUTPUTS) <= artifacts


def test_a_second_call_resumes_and_trains_no_more_steps(trained, resumed):
    assert trained.step == 2
    assert global_step(trained.run_dir) == 2
    after, _ = load_mapper(trained.published / "mapper.safetensors")
    before = trained.mapper
    assert all(torch.equal(a, b) for a, b in zip(before.state_dict().values(), after.state_dict().values()))
    assert [path.name for path in (trained.published / "runs").iterdir()] == [trained.run_dir.name]  # one run


def test_a_resumed_run_reuses_the_latent_cache(trained, resumed):
    names = sorted(resumed.latents_before)
    digest = file_digest(trained.cfg.backbone.weights)
    assert len(names) == 2 and all(name.startswith(f"latents-{digest}-") and "-T2-" in name for name in names)
    assert snapshot(trained.latents) == resumed.latents_before  # no new file, none rewritten


def test_a_resumed_run_still_reports_and_keeps_its_metrics(trained, resumed):
    assert set(FIVE_METRICS) <= resumed.metrics.keys()
    assert json.loads((trained.published / "metrics.json").read_text()) == trained.metrics


def test_latent_cache_is_keyed_by_backbone_file_and_step_count(trained, tmp_path):
    cfg, cache = trained.cfg, tmp_path / "latents"
    pipe = backbone_pipeline(cfg)
    faces = SynthFaceDataset("val", 2, 2, cfg.world.image_size)
    first = cached_latents(pipe, cfg.backbone.weights, faces, 2, 0, cache)
    assert set(first) == {"z", "x_T", "recon", "image", "labels"} and len(first["z"]) == 2
    files = snapshot(cache)
    assert len(files) == 1

    again = cached_latents(pipe, cfg.backbone.weights, faces, 2, 0, cache)
    assert snapshot(cache) == files  # the same file, read back
    assert all(torch.equal(first[key], again[key]) for key in first)

    cached_latents(pipe, cfg.backbone.weights, faces, 3, 0, cache)  # another T
    assert len(snapshot(cache)) == 2

    torch.manual_seed(123)
    other = tmp_path / "other_backbone.safetensors"
    save_backbone(DiffAE(preset("synth64_tiny")), other, "synth64_tiny", "v")
    assert file_digest(other) != file_digest(cfg.backbone.weights)
    other_latents = cached_latents(DiffAEPipeline.from_weights(str(other)), other, faces, 2, 0, cache)
    assert len(snapshot(cache)) == 3
    assert not torch.equal(other_latents["z"], first["z"])


def test_a_new_backbone_or_judge_file_starts_a_new_run_rather_than_resuming_the_old(trained, tmp_path):
    other = tmp_path / "other_backbone.safetensors"
    save_backbone(DiffAE(preset("synth64_tiny")), other, "synth64_tiny", "v")
    on_other = OmegaConf.merge(trained.cfg, {"backbone": {"weights": str(other)}})
    assert settings_run_dir(trained.cfg, "smile") == trained.run_dir
    assert settings_run_dir(on_other, "smile") != trained.run_dir
    judge = tmp_path / "identity.safetensors"
    judge.write_bytes(Path(trained.cfg.judges.identity).read_bytes() + b" ")
    assert settings_run_dir(OmegaConf.merge(trained.cfg, {"judges": {"identity": str(judge)}}), "smile") \
        != trained.run_dir


def test_a_whitened_mapper_trains_from_the_training_latents_covariance(trained):
    """mapper.whiten=true: the whitening is fitted on the cached training latents, trained with and saved."""
    cfg = OmegaConf.merge(trained.cfg, {"mapper": {"whiten": True}})
    in_folder(trained.root, train_mapper, cfg, "glasses")  # another attribute: the smile run stays as it was
    mapper, info = load_mapper(mapper_dir(cfg, "glasses") / "mapper.safetensors")
    z = mapper_latents(cfg, backbone_pipeline(cfg), "train")["z"]  # read back from the cache
    assert info["whiten"] is True
    covariance = torch.cov(z.T)
    assert torch.allclose(mapper.whitening @ mapper.whitening, covariance, atol=1e-4 * covariance.abs().max())
    assert mapper.layers[-1].weight.abs().sum() > 0


def test_unknown_attribute_fails_with_a_suggestion_before_anything_is_computed(tiny_cfg, tmp_path):
    with pytest.raises(UnknownAttributeError, match="did you mean 'smile'"):
        train_mapper(tiny_cfg, "smiel")
    assert not (tmp_path / "runs").exists()  # no latents, no MLflow store, no run folder


def test_training_under_ddp_with_two_cpu_processes(tiny_world, tmp_path):
    """`chatface train` with trainer.devices=2 trainer.strategy=ddp: Lightning starts a second process running the
    same command line (gloo on CPU); rank 0 exports."""
    backbone = save_live_backbone(tmp_path / "live_backbone.safetensors")
    command = [sys.executable, "-m", "chatface.cli", "train", "attr=smile", *tiny_world, f"backbone.weights={backbone}",
               f"output_dir={tmp_path / 'runs'}", f"tracking.tracking_uri=sqlite:///{tmp_path / 'runs' / 'mlflow.db'}",
               "trainer.devices=2", "trainer.strategy=ddp"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    published = tmp_path / "runs" / "mappers" / "synth" / "smile"
    mapper, info = load_mapper(published / "mapper.safetensors")
    assert info["attribute"] == "smile" and mapper.layers[-1].weight.abs().sum() > 0
    (run_dir,) = (published / "runs").iterdir()
    assert global_step(run_dir) == 2
    metrics = json.loads((published / "metrics.json").read_text())
    assert set(FIVE_METRICS) <= metrics.keys() and all(math.isfinite(value) for value in metrics.values())
