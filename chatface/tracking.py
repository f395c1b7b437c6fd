"""MLflow tracking: the logger every run uses, resumable across restarts of the same run directory."""

from pathlib import Path

from lightning.pytorch.loggers import MLFlowLogger
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig


class RunLogger(MLFlowLogger):
    """MLFlowLogger for a run folder: continuing the folder's run with other hyper-parameters is refused with the
    way out, before any step is trained (MLflow keeps one value per parameter and run)."""

    def __init__(self, run_dir: Path, **kwargs):
        super().__init__(**kwargs)
        self.run_dir = run_dir

    def log_hyperparams(self, params) -> None:
        try:
            super().log_hyperparams(params)
        except MlflowException as error:
            if "Changing param values" not in str(error):
                raise
            raise ValueError(f"{self.run_dir} holds a run started with other settings ({error.message}). "
                             f"Continue it with the settings it was started with, or start a new run elsewhere "
                             f"(another run_name or output_dir), or delete {self.run_dir}.") from None


def mlflow_logger(cfg: DictConfig, run_name: str, run_dir: Path, tags: dict[str, str] | None = None) -> MLFlowLogger:
    """A logger for `run_name`; a run directory that was logged before continues the same MLflow run. `tags` are
    set when the run is created (e.g. mlflow.parentRunId, which nests it under another run)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    id_file = run_dir / "mlflow_run_id"
    run_id = id_file.read_text().strip() if id_file.exists() else None
    logger = RunLogger(run_dir, experiment_name=cfg.tracking.experiment, run_name=run_name,
                       tracking_uri=cfg.tracking.tracking_uri, run_id=run_id, tags=tags,
                       artifact_location=artifact_location(cfg.tracking.tracking_uri))
    if run_id is None:
        id_file.write_text(logger.run_id)
    return logger


def artifact_location(uri: str) -> str | None:
    """With a local SQLite store, artifacts go beside it (runs/mlartifacts), not into ./mlruns of whatever folder
    the command ran in; a server decides for itself. Applies to experiments created from now on."""
    if not uri.startswith("sqlite:///"):
        return None
    folder = Path(uri.removeprefix("sqlite:///")).parent
    folder.mkdir(parents=True, exist_ok=True)
    return (folder / "mlartifacts").resolve().as_uri()
