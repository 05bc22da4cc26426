"""Where the embedded default keeps its state (one folder, ``$AIDETECT_HOME`` or ``./.aidetect``)."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """Root folder of all local state: datasets, MLflow store, inference logs, reports."""
    return Path(os.environ.get("AIDETECT_HOME", ".aidetect")).resolve()


def datasets_root() -> str:
    """Dataset versions: ``$AIDETECT_DATASETS`` (a folder or ``s3://`` prefix) or ``<home>/datasets``."""
    return os.environ.get("AIDETECT_DATASETS") or str(home() / "datasets")


def tracking_uri() -> str:
    """MLflow tracking URI: ``$MLFLOW_TRACKING_URI`` or a SQLite file under home."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home() / 'mlflow.db'}"


def artifacts_root() -> str:
    """Default MLflow artifact location for the embedded default."""
    return os.environ.get("AIDETECT_ARTIFACTS") or (home() / "mlartifacts").as_uri()


def shared_datasets() -> Path | None:
    """``../shared/datasets`` beside the checkout (or ``$AIDETECT_SHARED_DATASETS``), if present."""
    env = os.environ.get("AIDETECT_SHARED_DATASETS")
    candidates = [Path(env)] if env else []
    repo = Path(__file__).resolve().parents[2]
    candidates.append(repo.parent / "shared" / "datasets")
    for c in candidates:
        if c.is_dir():
            return c
    return None
