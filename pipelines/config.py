"""Settings of the KFP pipelines (concern ``pipeline``, file ``configs/pipeline.yaml``). No kfp import."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from aidetect import config as aconfig
from aidetect.errors import ConfigError

_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|E|Ei|P|Pi|T|Ti|G|Gi|M|Mi|K|Ki)?$")


@dataclass
class Images:
    """The images components run in: ``<registry>/<name>:<tag>``."""

    registry: str = "ghcr.io/aidetect"
    tag: str = "0.1.0"
    train: str = "aidetect-train"
    serve: str = "aidetect-serve"

    def validate(self) -> None:
        if not _TAG.match(self.tag):
            raise ConfigError(f"images.tag: not a valid image tag: {self.tag!r}")
        if not self.registry or self.registry.endswith("/"):
            raise ConfigError(f"images.registry: expected e.g. ghcr.io/org, got {self.registry!r}")

    def ref(self, name: str) -> str:
        return f"{self.registry}/{name}:{self.tag}"

    @property
    def train_image(self) -> str:
        return self.ref(self.train)

    @property
    def serve_image(self) -> str:
        return self.ref(self.serve)


@dataclass
class TrainResources:
    """Requests and limits of the train step on a cluster (empty string or 0: not set)."""

    accelerator_type: str = "nvidia.com/gpu"
    accelerator_limit: int = 1
    cpu_request: str = ""
    memory_request: str = ""
    memory_limit: str = ""

    def validate(self) -> None:
        if self.accelerator_limit < 0:
            raise ConfigError("train_resources.accelerator_limit: must be >= 0")
        for name in ("cpu_request", "memory_request", "memory_limit"):
            value = getattr(self, name)
            if value and not _QUANTITY.match(value):
                raise ConfigError(f"train_resources.{name}: not a Kubernetes quantity: {value!r}")


@dataclass
class TrainingDefaults:
    """Defaults of the training pipeline's parameters."""

    model_name: str = "aidetect-detector"
    preset: str = "cifake-gpu"
    gate_config: str = ""
    mlflow_uri: str = ""
    datasets_root: str = ""
    node_selector: dict[str, Any] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)

    def validate(self) -> None:
        for i, tol in enumerate(self.tolerations):
            if not isinstance(tol, dict):
                raise ConfigError(f"training.tolerations[{i}]: expected a mapping")
            op = tol.get("operator", "Equal")
            if op not in ("Equal", "Exists"):
                raise ConfigError(f"training.tolerations[{i}].operator: Equal or Exists, got {op!r}")


@dataclass
class MonitoringDefaults:
    """Defaults of the monitoring pipeline's parameters."""

    model_name: str = "aidetect-detector"
    alias: str = "production"
    since: str = "1h"  # the drift check's window
    quality_since: str = "7d"  # the live-quality check's window (labels arrive slowly)
    inference_log: str = ""
    labels_root: str = ""  # the label log; "": configs/feedback.yaml labels.root
    capture_store: str = ""  # the kept images; "": configs/feedback.yaml capture.store_uri
    kfp_host: str = ""
    # where verdicts and the retrain launch record (the cooldown) live; "": the configs' (AIDETECT_HOME,
    # which a KFP step pod loses: on a cluster, object storage)
    drift_reports: str = ""
    quality_reports: str = ""
    retrain_state: str = ""


@dataclass
class KfpApi:
    """The Kubeflow Pipelines API endpoint used for submissions."""

    host: str = ""
    experiment: str = "aidetect"
    namespace: str = ""
    timeout_s: float = 10.0


@dataclass
class PipelineConfig:
    """Everything ``aidetect pipeline`` needs: images, train resources, parameter defaults, KFP API."""

    images: Images = field(default_factory=Images)
    train_resources: TrainResources = field(default_factory=TrainResources)
    training: TrainingDefaults = field(default_factory=TrainingDefaults)
    monitoring: MonitoringDefaults = field(default_factory=MonitoringDefaults)
    kfp: KfpApi = field(default_factory=KfpApi)


def load(path: str | None = None, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Load ``configs/pipeline.yaml`` (or ``path``) with env and ``overrides`` applied."""
    return aconfig.load(PipelineConfig, "pipeline", path=path, overrides=overrides)
