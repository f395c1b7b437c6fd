"""MLflow tracking: the logger every run uses, resumable across restarts of the same run directory."""

from pathlib import Path

from lightning.pytorch.loggers import MLFlowLogger
from omegaconf import DictConfig


def mlflow_logger(cfg: DictConfig, run_name: str, run_dir: Path) -> MLFlowLogger:
    """A logger for `run_name`; a run directory that was logged before continues the same MLflow run."""
    run_dir.mkdir(parents=True, exist_ok=True)
    _make_sqlite_dir(cfg.tracking.tracking_uri)
    id_file = run_dir / "mlflow_run_id"
    run_id = id_file.read_text().strip() if id_file.exists() else None
    logger = MLFlowLogger(experiment_name=cfg.tracking.experiment, run_name=run_name,
                          tracking_uri=cfg.tracking.tracking_uri, run_id=run_id)
    if run_id is None:
        id_file.write_text(logger.run_id)
    return logger


def _make_sqlite_dir(uri: str) -> None:
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
