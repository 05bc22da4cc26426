"""Where a flow reads and writes: the dataset store and the MLflow tracking/registry server."""

from __future__ import annotations

from dataclasses import dataclass

from aidetect import paths, registry


@dataclass(frozen=True)
class Stores:
    """The stores one run uses, passed explicitly instead of through environment variables.

    Empty fields mean the embedded default (``$AIDETECT_HOME``) or the environment the process was
    started with (``AIDETECT_DATASETS``, ``MLFLOW_TRACKING_URI``, ``AIDETECT_REGISTRY__MODEL_NAME``)."""

    datasets_root: str = ""
    tracking_uri: str = ""
    model_name: str = ""

    @property
    def datasets(self) -> str:
        return self.datasets_root or paths.datasets_root()

    @property
    def name(self) -> str:
        return self.model_name or registry.model_name()

    def activate(self) -> Stores:
        """Point the registry adapter at this run's tracking server (no environment change)."""
        registry.use_tracking_uri(self.tracking_uri or None)
        return self
