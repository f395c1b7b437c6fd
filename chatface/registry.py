"""The MLflow Model Registry entry of an attribute's mapper: `chatface-<world>-<attr>`.

A sweep registers its best trial (by the weighted score) as a version whose source is the trial run's `model/`
artifacts (mapper.safetensors + mapper.yaml) and points the alias `best` at it. `find_mapper` (`make edit`, chat,
the leaderboard) loads the version `best` names (else the latest), downloaded once under runs/registry/.
"""

import logging
import shutil
import tempfile
from pathlib import Path

from omegaconf import DictConfig

MODEL_DIR = "model"  # the artifact folder of a trial run that a registered version points at
ALIAS = "best"
log = logging.getLogger(__name__)


def model_name(cfg: DictConfig, attr: str) -> str:
    return f"chatface-{cfg.world.name}-{attr}"


def _client(cfg: DictConfig):
    from mlflow import MlflowClient

    return MlflowClient(cfg.tracking.tracking_uri, registry_uri=cfg.tracking.tracking_uri)


def register_mapper(cfg: DictConfig, attr: str, run_id: str, tags: dict[str, str]) -> str:
    """Registers `run_id`'s mapper as a new version (unless the latest already is that run); returns its version."""
    from mlflow.exceptions import MlflowException

    client, name = _client(cfg), model_name(cfg, attr)
    try:
        client.create_registered_model(name, description=f"ChatFace mapper of {attr!r} in the {cfg.world.name} "
                                                          "world: mapper.safetensors + mapper.yaml")
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    latest = _latest(client, name)
    if latest is not None and latest.run_id == run_id:
        version = latest.version
    else:
        version = client.create_model_version(name, f"runs:/{run_id}/{MODEL_DIR}", run_id=run_id,
                                              tags=tags).version
    client.set_registered_model_alias(name, ALIAS, version)
    return str(version)


def registered_mapper_file(cfg: DictConfig, attr: str) -> Path | None:
    """The local copy of the registered mapper of `attr`, or None when there is none (or no registry to ask)."""
    uri = cfg.tracking.tracking_uri
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return None  # no tracking store yet: nothing was ever registered (and asking would create one)
    from mlflow.exceptions import MlflowException

    name = model_name(cfg, attr)
    try:
        client = _client(cfg)
        try:
            version = client.get_model_version_by_alias(name, ALIAS)
        except MlflowException:
            version = _latest(client, name)
        if version is None:
            return None
        target = Path(cfg.output_dir) / "registry" / name / f"v{version.version}" / "mapper.safetensors"
        if not target.exists():
            _download(uri, f"{version.source}/mapper.safetensors", target)
        return target
    except (MlflowException, OSError) as error:
        log.warning("the model registry at %s could not give %s (%s); using the local mapper", uri, name, error)
        return None


def _latest(client, name: str):
    versions = client.search_model_versions(f"name='{name}'")
    return max(versions, key=lambda v: int(v.version), default=None)


def _download(tracking_uri: str, artifact_uri: str, target: Path) -> None:
    import mlflow.artifacts

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        path = mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri, dst_path=tmp, tracking_uri=tracking_uri)
        shutil.move(path, target)  # within one folder: whole or absent, never half a file
