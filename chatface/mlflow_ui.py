"""`chatface ui` (`make ui [PORT=5000]`): MLflow's own UI over the tracking store, on 127.0.0.1 only."""

import subprocess
import sys
from pathlib import Path

from omegaconf import DictConfig

HOST = "127.0.0.1"


def ui_command(cfg: DictConfig, port: int) -> list[str]:
    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", cfg.tracking.tracking_uri,
            "--host", HOST, "--port", str(port), "--workers", "1"]


def serve_ui(cfg: DictConfig, port: int) -> None:
    uri = cfg.tracking.tracking_uri
    if uri.startswith(("http://", "https://", "databricks")):
        print(f"the tracking server {uri} serves its own UI: open it in a browser")
        return
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    print(f"MLflow UI: http://{HOST}:{port}  (tracking store {uri}; Ctrl-C stops it)", flush=True)
    try:
        code = subprocess.run(ui_command(cfg, port), check=False).returncode
    except KeyboardInterrupt:
        return
    if code != 0:
        sys.exit(f"mlflow ui exited with code {code}; if port {port} is taken, choose another (make ui PORT=5001)")
