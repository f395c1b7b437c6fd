"""`chatface leaderboard` (`make leaderboard`): every method x attribute on the same held-out faces, backbone and
judges; each score with a bootstrap 95% interval, and the wall time of training and editing.

A cell (attribute, method) reuses what was trained with the same settings in
runs/leaderboard/<world>/<attr>/<method>/<settings digest>/, else trains the method there on the shared training
latents (timed, logged to MLflow as a run nested under the leaderboard's run); then it edits the N test faces and
scores the edits against the input faces. A killed leaderboard loses at most the cell it was training.
ChatFace comes from the registry (a sweep's best) or `make train` when either has a mapper for this backbone;
else it is trained in its cell the way `make train` trains it, for leaderboard.chatface_max_steps when set.
"""

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import MLFlowLogger
from omegaconf import DictConfig, OmegaConf
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader
from torchmetrics import MetricCollection

from chatface.backbone_eval import backbone_pipeline, compute_device
from chatface.catalog import Attribute, default_catalog
from chatface.leaderboard_methods import METHODS, REFERENCE, Method, chatface_module, check_methods, published_chatface
from chatface.leaderboard_report import write_report
from chatface.tracking import mlflow_logger
from chatface.train_mapper import learnt_from, mapper_latents, train_mapper
from datamodules.latent_cache import LatentDataset, latent_batches
from diffusion.inversion_cache import InversionCachingPipeline
from metrics.bootstrap import bootstrap_scores, per_face_states
from metrics.edit_metrics import edit_metrics
from networks.judges.loading import load_judges

Latents = dict[str, torch.Tensor]


@dataclass
class Cell:
    attr: str
    method: str
    title: str
    origin: str  # trained, reused, registry, make train, reference (the no-edit row) or failed
    steps: int
    batch_size: int
    train_seconds: float | None  # None where the mapper came from elsewhere
    edit_seconds_per_face: float
    scores: dict[str, tuple[float, float, float]]  # name -> (score, 2.5 %, 97.5 %); empty when failed
    error: str | None = None


@dataclass
class Board:
    """What the leaderboard needs at hand for every cell."""

    cfg: DictConfig
    pipe: object
    judges: object
    train: Latents
    test: Latents
    folder: Path
    parent_run_id: str


def leaderboard_config(cfg: DictConfig, **mapper: int) -> DictConfig:
    """`cfg` with the mapper's face counts set to the leaderboard's (the training latents every method learns from
    and the N test faces every method edits), ChatFace's training budget, and any other mapper settings given."""
    lb = cfg.leaderboard
    counts = {"train_faces": lb.train_faces, "test_faces": lb.faces,
              "max_steps": lb.chatface_max_steps or cfg.mapper.max_steps}
    merged = OmegaConf.merge(cfg, {"mapper": {**counts, **mapper}})
    OmegaConf.set_readonly(merged, True)
    return merged


def run_leaderboard(cfg: DictConfig) -> dict[str, Path]:
    """Fill every cell, then write the table, CSV, bar chart and grids; returns their paths."""
    methods = check_methods(list(cfg.leaderboard.methods))
    entries = [default_catalog()[attr] for attr in cfg.leaderboard.attrs]  # unknown names fail here, with hints
    cfg = leaderboard_config(cfg)
    pipe = backbone_pipeline(cfg)
    folder = Path(cfg.output_dir) / "leaderboard" / cfg.world.name
    parent = mlflow_logger(cfg, f"leaderboard-{cfg.world.name}", folder, tags={"chatface.leaderboard": "summary"})
    # The test faces are inverted as the editor inverts a user's photo (backbone.invert_refine fixed-point steps);
    # the training latents keep the cheaper mapper.invert_refine.
    test_cfg = leaderboard_config(cfg, invert_refine=cfg.backbone.invert_refine)
    train, test = mapper_latents(cfg, pipe, "train"), mapper_latents(test_cfg, pipe, "test")
    # One pipeline for every cell: DiffusionCLIP and Asyrp invert each face once, not once per attribute.
    board = Board(cfg, InversionCachingPipeline(pipe), load_judges(cfg.judges), train, test, folder, parent.run_id)
    if board.train["labels"].shape[1] == 0 and any(method.name == "linear" for method in methods):
        print("[leaderboard] these faces have no attribute labels: the linear direction, which learns from labels, "
              "is left out", flush=True)
        methods = [method for method in methods if method.name != "linear"]
    cells, edits = [], {}
    total, done = len(entries) * len(methods), 0
    for entry in entries:
        for method in methods:
            done += 1
            print(f"[leaderboard {done}/{total}] {entry.name} · {method.title}", flush=True)
            try:
                cell, edits[entry.name, method.name] = run_cell(board, method, entry)
            except Exception as error:  # one broken method must not cost the other cells their hours
                print(f"[leaderboard] {entry.name} · {method.title} failed, going on: {error!r}", flush=True)
                steps, batch_size = method.budget(cfg)
                cell = Cell(entry.name, method.name, method.title, "failed", steps, batch_size, None, math.nan, {},
                            f"{type(error).__name__}: {error}")
            cells.append(cell)
    paths = write_report(cfg, cells, edits, board.test["image"], folder)
    for path in paths.values():
        parent.experiment.log_artifact(parent.run_id, str(path))
    parent.experiment.set_terminated(parent.run_id, "FINISHED")
    print(paths["markdown"].read_text())
    return paths


def run_cell(board: Board, method: Method, entry: Attribute) -> tuple[Cell, torch.Tensor]:
    cfg = board.cfg
    cell_dir = board.folder / entry.name / method.name / settings_digest(cfg, method)
    steps, batch_size = method.budget(cfg)
    logger = mlflow_logger(cfg, f"leaderboard-{entry.name}-{method.name}", cell_dir,
                           tags={"mlflow.parentRunId": board.parent_run_id, "chatface.leaderboard": cfg.world.name})
    try:
        module, origin, train_seconds = _ready(board, method, entry, cell_dir, logger)
        start = time.perf_counter()
        edited = _edited_test_faces(board, method, module)
        edit_seconds = (time.perf_counter() - start) / len(edited)
        scores = _scores(board, entry, edited)
    except Exception as error:
        logger.experiment.set_tag(logger.run_id, "chatface.error", f"{type(error).__name__}: {error}"[:5000])
        logger.experiment.set_terminated(logger.run_id, "FAILED")
        raise
    cell = Cell(entry.name, method.name, method.title, origin, steps, batch_size, train_seconds, edit_seconds, scores)
    _log_cell(logger, method, cell)
    (cell_dir / "cell.json").write_text(json.dumps(asdict(cell), indent=2))
    return cell, edited


def settings_digest(cfg: DictConfig, method: Method) -> str:
    """Everything that changes what a method learns: its settings, the backbone, the judges, the training faces."""
    text = "\n".join([OmegaConf.to_yaml(method.section(cfg)), f"budget={method.budget(cfg)}", learnt_from(cfg),
                      f"faces={cfg.mapper.train_faces} T={cfg.mapper.steps} refine={cfg.mapper.invert_refine}",
                      f"seed={cfg.trainer.seed}"])
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _ready(board: Board, method: Method, entry: Attribute, cell_dir: Path,
           logger: MLFlowLogger) -> tuple[L.LightningModule | None, str, float | None]:
    """(the method's module in eval mode, where it came from, its training seconds if trained here or before)."""
    if method.name == REFERENCE:
        return None, "reference", None
    if method.name == "chatface":
        module, origin, seconds = _published_or_trained_chatface(board, entry, cell_dir, logger)
        return module.attach(board.pipe, board.judges).eval(), origin, seconds
    module = method.build(board.cfg, entry, board.train["z"]).attach(board.pipe, board.judges)
    origin, seconds = _trained(board, method, module, cell_dir, logger)
    return module.eval(), origin, seconds


def _published_or_trained_chatface(board: Board, entry: Attribute, cell_dir: Path,
                                   logger: MLFlowLogger) -> tuple[L.LightningModule, str, float | None]:
    """ChatFace's mapper from the registry or `make train`, else trained in `cell_dir` as `make train` trains it
    (its validations and keep_best included, on the leaderboard's training faces; a killed run resumes)."""
    published = published_chatface(board.cfg, entry)
    if published is not None:
        return *published, None
    record = cell_dir / "train.json"
    origin = "reused" if record.exists() else "trained"
    if origin == "trained":
        _log_budget(board.cfg, METHODS["chatface"], logger)
        start = time.perf_counter()
        train_mapper(board.cfg, entry.name, run_dir=cell_dir, logger=logger)
        seconds = time.perf_counter() - start
        record.write_text(json.dumps({"train_seconds": seconds, "steps": board.cfg.mapper.max_steps}))
    seconds = json.loads(record.read_text())["train_seconds"]
    return chatface_module(board.cfg, entry, cell_dir / "mapper.safetensors"), origin, seconds


def _trained(board: Board, method: Method, module: L.LightningModule, cell_dir: Path,
             logger: MLFlowLogger) -> tuple[str, float]:
    """Load the module's trained state from `cell_dir`, or train and save it there: (origin, training seconds)."""
    weights, record = cell_dir / "weights.safetensors", cell_dir / "train.json"
    if weights.exists() and record.exists():
        module.load_state_dict(load_file(weights))
        return "reused", json.loads(record.read_text())["train_seconds"]
    cfg, (steps, batch_size) = board.cfg, _log_budget(board.cfg, method, logger)
    L.seed_everything(cfg.trainer.seed, verbose=False)
    trainer = L.Trainer(max_steps=steps, accelerator=cfg.trainer.accelerator, devices=1,
                        precision=cfg.trainer.precision, logger=logger, enable_checkpointing=False,
                        log_every_n_steps=min(cfg.trainer.log_every_n_steps, steps), limit_val_batches=0,
                        num_sanity_val_steps=0, enable_model_summary=False)
    data = LatentDataset(board.train)
    start = time.perf_counter()
    trainer.fit(module, DataLoader(data, min(batch_size, len(data)), shuffle=True, drop_last=True))
    seconds = time.perf_counter() - start
    state = {name: tensor.detach().contiguous() for name, tensor in module.state_dict().items()}
    save_file(state, weights.with_suffix(".partial"))
    weights.with_suffix(".partial").rename(weights)  # a killed run leaves no file that looks complete
    record.write_text(json.dumps({"train_seconds": seconds, "steps": steps, "batch_size": batch_size}))
    return "trained", seconds


def _log_budget(cfg: DictConfig, method: Method, logger: MLFlowLogger) -> tuple[int, int]:
    """Log the method's budget beside the settings its module logs itself; return (steps, batch size)."""
    steps, batch_size = method.budget(cfg)
    logger.log_hyperparams({"leaderboard.method": method.name, "leaderboard.steps": steps,
                            "leaderboard.batch_size": batch_size, "leaderboard.train_faces": cfg.mapper.train_faces})
    return steps, batch_size


def _edited_test_faces(board: Board, method: Method, module: L.LightningModule | None) -> torch.Tensor:
    """The method's edits of the test faces, made on the accelerator (with the backbone and judges attached to the
    module); the judges then score them on the CPU, where the faces are."""
    device = compute_device(board.cfg.trainer.accelerator)
    if module is not None:
        module.to(device)
    try:
        return torch.cat([method.edit(module, {key: value.to(device) for key, value in part.items()}).cpu()
                          for part in latent_batches(board.test, 16)])
    finally:
        if module is not None:
            module.cpu()


def _scores(board: Board, entry: Attribute, edited: torch.Tensor) -> dict[str, tuple[float, float, float]]:
    metrics = MetricCollection(edit_metrics(board.judges, entry.name, entry.source, entry.target),
                               compute_groups=False)
    source = board.test["image"]
    states = per_face_states(metrics, source, edited, source_labels=board.test["labels"])
    return bootstrap_scores(metrics, states, board.cfg.leaderboard.bootstrap, seed=board.cfg.trainer.seed)


def _log_cell(logger: MLFlowLogger, method: Method, cell: Cell) -> None:
    metrics = {"edit_seconds_per_face": cell.edit_seconds_per_face}
    if cell.train_seconds is not None:
        metrics["train_seconds"] = cell.train_seconds
    for name, (score, low, high) in cell.scores.items():
        metrics |= {f"leaderboard/{name}": score, f"leaderboard/{name}_low": low, f"leaderboard/{name}_high": high}
    logger.log_metrics({key: value for key, value in metrics.items() if value == value})  # NaN: nothing to log
    logger.experiment.set_tag(logger.run_id, "chatface.origin", cell.origin)
    logger.experiment.set_terminated(logger.run_id, "FINISHED")
