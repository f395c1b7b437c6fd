"""The leaderboard end to end on the tiny world (every method trained for two steps), and the two baselines that
live here: the StyleCLIP mapper and DiffAE's linear direction."""

import csv
import math
from pathlib import Path

import lightning as L
import pytest
import torch
from mlflow import MlflowClient
from PIL import Image
from torch.utils.data import DataLoader

from chatface.backbone_eval import backbone_pipeline
from chatface.catalog import default_catalog
from chatface.cli import main
from chatface.config import load_config
from chatface.leaderboard import leaderboard_config, run_leaderboard, settings_digest
from chatface.editor import mapper_file
from chatface.leaderboard_methods import METHODS, published_chatface
from chatface.train_mapper import train_mapper
from conftest import save_live_backbone
from datamodules.latent_cache import file_digest
from lightning_modules.linear_direction import LinearDirection
from lightning_modules.styleclip_mapper import StyleCLIPMapping
from networks.mapper import LatentMapper
from networks.mapper_checkpoint import save_mapper
from networks.judges.loading import load_judges
from synthface.attributes import ATTRIBUTE_INDEX

pytestmark = pytest.mark.slow  # the board tests train every method; the unit tests here ride along

ATTRS = ("smile", "glasses")
FACES = 4


def board_cfg(tiny_world: list[str], root: Path, *overrides: str):
    """The tiny world with a live backbone, two attributes, four test faces and two steps per method."""
    backbone = root / "live_backbone.safetensors"
    if not backbone.exists():
        save_live_backbone(backbone)
    budgets = [f"leaderboard.{name}.{key}={value}" for name in ("styleclip", "diffusionclip", "asyrp")
               for key, value in (("steps", 2), ("batch_size", 4))]
    return load_config([*tiny_world, f"backbone.weights={backbone}", f"output_dir={root / 'runs'}",
                        f"tracking.tracking_uri=sqlite:///{root / 'runs' / 'mlflow.db'}",
                        f"leaderboard.attrs=[{','.join(ATTRS)}]", f"leaderboard.faces={FACES}",
                        "leaderboard.train_faces=8", "leaderboard.bootstrap=50",
                        "leaderboard.linear.steps=3", "leaderboard.linear.batch_size=8",
                        "leaderboard.diffusionclip.inv_steps=2", "leaderboard.diffusionclip.train_steps=1",
                        "leaderboard.diffusionclip.test_steps=2", "leaderboard.asyrp.inv_steps=2",
                        "leaderboard.asyrp.train_steps=3", "leaderboard.asyrp.test_steps=2", *budgets,
                        *overrides])


@pytest.fixture(scope="module")
def board(tiny_world, tmp_path_factory):
    root = tmp_path_factory.mktemp("leaderboard")
    cfg = board_cfg(tiny_world, root)
    paths = run_leaderboard(cfg)
    rows = list(csv.DictReader(paths["csv"].open()))
    return cfg, paths, rows


def items(**columns: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """Rows of equally long tensors as a dataset of dicts, batched back into dicts by the DataLoader."""
    return [dict(zip(columns, row)) for row in zip(*columns.values())]


def cells_of(rows: list[dict]) -> set[tuple[str, str]]:
    return {(row["attr"], row["method"]) for row in rows}


def test_every_method_and_attribute_gets_a_cell_with_intervals(board):
    cfg, paths, rows = board
    assert cells_of(rows) == {(attr, method) for attr in ATTRS for method in METHODS}
    for row in rows:
        if row["method"] == "reconstruction":  # the no-edit row: nothing trained, the cached reconstruction itself
            assert row["origin"] == "reference" and row["train_seconds"] == ""
        else:
            assert row["origin"] == "trained" and float(row["train_seconds"]) > 0
        for name in ("sdir", "sc", "id", "leakage"):
            score, low, high = (float(row[f"{name}{suffix}"]) for suffix in ("", "_low", "_high"))
            assert low <= score <= high, (row["method"], name)
    table = paths["markdown"].read_text()
    assert all(method.title in table for method in METHODS.values()) and "95% bootstrap interval" in table
    assert "- DiffusionCLIP: 2 steps × batch 4 (lr=8e-06" in table  # the budgets are in the caption


def test_the_leaderboard_draws_a_chart_and_a_grid_per_attribute(board):
    _, paths, _ = board
    with Image.open(paths["chart"]) as chart:
        assert chart.width > chart.height > 100
    for attr in ATTRS:
        with Image.open(paths[f"grid_{attr}"]) as grid:  # rows: the source and each method; columns: the faces
            assert grid.height == (1 + len(METHODS)) * 66 + 2 and grid.width > FACES * 66


def test_every_cell_is_a_nested_mlflow_run_under_the_leaderboard_run(board):
    cfg, paths, _ = board
    client = MlflowClient(cfg.tracking.tracking_uri)
    folder = paths["markdown"].parent
    parent = (folder / "mlflow_run_id").read_text().strip()
    runs = client.search_runs([client.get_experiment_by_name(cfg.tracking.experiment).experiment_id],
                              f"tags.mlflow.parentRunId = '{parent}'")
    assert {run.info.run_name for run in runs} == {f"leaderboard-{a}-{m}" for a in ATTRS for m in METHODS}
    for run in runs:
        assert {"leaderboard/sdir", "leaderboard/id_low", "edit_seconds_per_face"} <= run.data.metrics.keys()
        trained = run.info.run_name.split("-")[-1] != "reconstruction"
        assert ("train_seconds" in run.data.metrics) == trained
        if trained:  # the budget is logged beside the module's own settings (e.g. DiffusionCLIP's train_steps)
            assert run.data.params["leaderboard.steps"] in ("2", "3")
    artifacts = {artifact.path for artifact in client.list_artifacts(parent)}
    assert {"leaderboard.md", "leaderboard.csv", "leaderboard.png"} <= artifacts


def test_a_second_leaderboard_reuses_every_trained_method(board):
    cfg, paths, rows = board
    folder = paths["markdown"].parent
    weights = sorted([*folder.glob("*/*/*/weights.safetensors"), *folder.glob("*/chatface/*/mapper.safetensors")])
    assert len(weights) == len(ATTRS) * (len(METHODS) - 1)  # every method but the no-edit row
    before = {path: path.stat().st_mtime_ns for path in weights}
    again = list(csv.DictReader(run_leaderboard(cfg)["csv"].open()))
    assert {row["origin"] for row in again} == {"reused", "reference"}
    assert {path: path.stat().st_mtime_ns for path in weights} == before
    first = {(row["attr"], row["method"]): row["sdir"] for row in rows}
    assert {(row["attr"], row["method"]): row["sdir"] for row in again} == first  # same weights, same edits


def test_chatface_comes_from_make_train_when_it_has_a_mapper(tiny_world, tmp_path):
    cfg = board_cfg(tiny_world, tmp_path, "leaderboard.methods=[chatface]", "leaderboard.attrs=[smile]")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        train_mapper(cfg, "smile")
    row, = csv.DictReader(run_leaderboard(cfg)["csv"].open())
    assert row["origin"] == "make train" and row["train_seconds"] == ""


def test_an_unknown_method_or_attribute_is_a_clear_error(capsys):
    assert main(["leaderboard", "leaderboard.methods=[chatface,stylegan]"]) == 2
    assert "unknown leaderboard method(s) stylegan; choose from reconstruction, chatface" in capsys.readouterr().err
    assert main(["leaderboard", "leaderboard.attrs=[smiel]"]) == 2
    assert "smile" in capsys.readouterr().err


# -- the baselines that live beside the leaderboard ---------------------------------------------------------------

def test_the_linear_direction_finds_the_labels_direction_and_edits_to_the_target_logit():
    """Labels of the smile column are the sign of z·u for a hidden unit vector u: the classifier's normal must
    find u, and every edited code must score exactly the target logit (codes beyond it stay)."""
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(512, 16, generator=generator) * 3 + 1
    u = torch.nn.functional.normalize(torch.randn(16, generator=generator), dim=0)
    labels = torch.zeros(512, len(ATTRIBUTE_INDEX))
    labels[:, ATTRIBUTE_INDEX["smile"]] = ((z - 1) @ u > 0).float()
    module = LinearDirection("smile", "face", "smiling face", 16, latent_steps=2, lr=0.05, target_logit=3.0)
    L.Trainer(max_steps=300, logger=False, enable_checkpointing=False, enable_progress_bar=False).fit(
        module, DataLoader(items(z=z, labels=labels), batch_size=128, shuffle=True))
    module.eval()
    normal = torch.nn.functional.normalize(module.classifier.weight[0] / module.standardise.running_var.sqrt(), dim=0)
    assert float(normal @ u) > 0.95
    edited = module.edited_codes(z)
    before, after = module.logit(z), module.logit(edited)
    moved = before < 3.0
    torch.testing.assert_close(after[moved], torch.full_like(after[moved], 3.0), atol=1e-4, rtol=0)
    torch.testing.assert_close(edited[~moved], z[~moved])


def test_the_styleclip_mapper_learns_only_its_mapper_and_starts_from_the_reconstruction(tiny_world, tmp_path):
    cfg = board_cfg(tiny_world, tmp_path)
    pipe, judges = backbone_pipeline(cfg), load_judges(cfg.judges)
    backbone_before = {name: p.clone() for name, p in pipe.model.state_dict().items()}
    module = StyleCLIPMapping("smile", "face", "smiling face", pipe.model.arch.z_dim, latent_steps=2).attach(pipe,
                                                                                                          judges)
    images = torch.rand(4, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        z = pipe.encode(images)
        x_T = pipe.invert(images, z, 2)
        recon = pipe.decode(x_T, z, 2)
    batch = {"z": z, "x_T": x_T, "recon": recon, "image": images}
    torch.testing.assert_close(module.edit(batch), recon)  # the last layer starts at zero: no edit yet
    trainer = L.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(module, DataLoader(items(**batch), batch_size=4))
    assert module.mapper.layers[-1].weight.abs().sum() > 0
    assert all(torch.equal(p, backbone_before[name]) for name, p in pipe.model.state_dict().items())
    assert not torch.allclose(module.edit(batch), recon)
    assert math.isfinite(trainer.callback_metrics["train/loss"])


def test_a_failing_method_is_recorded_as_failed_and_the_board_goes_on(tiny_world, tmp_path, monkeypatch):
    def broken_attach(self, pipe, judges):
        raise RuntimeError("the h-space is on holiday")

    monkeypatch.setattr("lightning_modules.asyrp.Asyrp.attach", broken_attach)
    cfg = board_cfg(tiny_world, tmp_path, "leaderboard.methods=[reconstruction,asyrp,linear]",
                    "leaderboard.attrs=[smile]")
    paths = run_leaderboard(cfg)
    rows = {row["method"]: row for row in csv.DictReader(paths["csv"].open())}
    assert rows["asyrp"]["origin"] == "failed" and "on holiday" in rows["asyrp"]["error"]
    assert rows["linear"]["origin"] == "trained" and rows["linear"]["sdir"] != "nan"
    assert "| smile | Asyrp | failed: RuntimeError: the h-space is on holiday |" in paths["markdown"].read_text()
    client = MlflowClient(cfg.tracking.tracking_uri)
    run_id = next(paths["markdown"].parent.glob("smile/asyrp/*/mlflow_run_id")).read_text().strip()
    run = client.get_run(run_id)
    assert run.info.status == "FAILED" and "on holiday" in run.data.tags["chatface.error"]


def test_every_method_edits_without_keeping_a_graph(tiny_world, tmp_path):
    """The leaderboard keeps every cell's edits for the grids: an edit that kept its autograd graph (ChatFace's
    module edits with gradients, for training) held gigabytes per cell and ran the default board out of memory."""
    cfg = board_cfg(tiny_world, tmp_path)
    pipe, judges = backbone_pipeline(cfg), load_judges(cfg.judges)
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    z = pipe.encode(images)
    batch = {"z": z, "x_T": pipe.invert(images, z, 2), "image": images, "recon": images, "labels": torch.zeros(2, 25)}
    for method in METHODS.values():
        module = None if method.name == "reconstruction" else method.build(cfg, default_catalog()["smile"], z)
        if module is not None:
            module.attach(pipe, judges).eval()
        assert not method.edit(module, batch).requires_grad, method.name


def test_a_whitened_chatface_cell_is_fitted_to_the_training_faces_and_kept_apart(tiny_world, tmp_path):
    """With mapper.whiten=true the leaderboard's ChatFace is whitened as `chatface train` does it, and its cell
    is not the unwhitened one."""
    cfg = board_cfg(tiny_world, tmp_path)
    whitened = load_config([*tiny_world, f"backbone.weights={cfg.backbone.weights}", "mapper.whiten=true"])
    z = torch.randn(32, 16, generator=torch.Generator().manual_seed(0))
    module = METHODS["chatface"].build(whitened, default_catalog()["smile"], z)
    assert torch.allclose(module.mapper.whitening @ module.mapper.whitening, torch.cov(z.T), atol=1e-5)
    plain = load_config([*tiny_world, f"backbone.weights={cfg.backbone.weights}", "mapper.whiten=false"])
    assert settings_digest(whitened, METHODS["chatface"]) != settings_digest(plain, METHODS["chatface"])


def test_chatface_is_trained_in_its_cell_as_make_train_trains_it(board):
    """Without a published mapper, ChatFace's cell runs `make train`'s training there: its validations, the kept
    best validation and the exported mapper, nested under the leaderboard's MLflow run."""
    cfg, paths, rows = board
    row = next(row for row in rows if row["method"] == "chatface")
    assert row["origin"] == "trained" and int(row["steps"]) == cfg.mapper.max_steps
    cell = next(paths["markdown"].parent.glob(f"{row['attr']}/chatface/*/"))
    assert {"mapper.safetensors", "metrics.json", "best.safetensors", "train.json"} <= {p.name for p in cell.iterdir()}
    run = MlflowClient(cfg.tracking.tracking_uri).get_run((cell / "mlflow_run_id").read_text().strip())
    assert "val/sdir" in run.data.metrics and "kept_step" in run.data.metrics


def test_leaderboard_chatface_max_steps_is_chatfaces_budget_there(tiny_world, tmp_path):
    """leaderboard.chatface_max_steps trains the leaderboard's ChatFace for that many steps (its own cell), and
    leaves `make train`'s mapper.max_steps alone."""
    plain = board_cfg(tiny_world, tmp_path)
    capped = board_cfg(tiny_world, tmp_path, "leaderboard.chatface_max_steps=3")
    assert leaderboard_config(plain).mapper.max_steps == plain.mapper.max_steps != 3
    assert leaderboard_config(capped).mapper.max_steps == 3 and capped.mapper.max_steps == plain.mapper.max_steps
    chatface = METHODS["chatface"]
    assert chatface.budget(leaderboard_config(capped))[0] == 3
    assert settings_digest(leaderboard_config(capped), chatface) != settings_digest(leaderboard_config(plain), chatface)


def test_a_whitened_styleclip_cell_is_fitted_to_the_training_faces(tiny_world, tmp_path):
    cfg = board_cfg(tiny_world, tmp_path, "leaderboard.styleclip.whiten=true")
    z = torch.randn(32, 16, generator=torch.Generator().manual_seed(0))
    module = METHODS["styleclip"].build(cfg, default_catalog()["smile"], z)
    assert torch.allclose(module.mapper.whitening @ module.mapper.whitening, torch.cov(z.T), atol=1e-5)


def test_a_published_whitened_chatface_mapper_is_used_as_trained(tiny_world, tmp_path):
    """A whitened mapper from `make train` or the registry enters the leaderboard with its whitening."""
    cfg = board_cfg(tiny_world, tmp_path)
    mapper = LatentMapper(16, 8, whiten=True)
    mapper.fit_whitening(torch.randn(32, 16, generator=torch.Generator().manual_seed(0)))
    torch.nn.init.normal_(mapper.layers[-1].weight)
    info = {"latent_dim": 16, "width": 8, "depth": 4, "sms": "linear", "sms_param": 0.5,
            "steps": cfg.mapper.steps, "backbone": file_digest(cfg.backbone.weights)}
    save_mapper(mapper, mapper_file(cfg, "smile"), info)
    module, origin = published_chatface(cfg, default_catalog()["smile"])
    z = torch.randn(4, 16)
    assert origin == "make train" and torch.allclose(module.mapper(z), mapper(z))
