"""Drift-monitoring settings (``configs/drift.yaml``, env ``AIDETECT_DRIFT__<FIELD>``, CLI flags)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

from aidetect.data.features import FEATURE_COLUMNS
from aidetect.errors import ConfigError

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_PROM_DURATION = re.compile(r"^[0-9]+(ms|s|m|h|d)$")  # a Prometheus range such as 10m
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str, field_name: str = "duration") -> timedelta:
    """``"90s"``, ``"30m"``, ``"1h"``, ``"1h30m"``, ``"7d"``, ``"2w"`` -> timedelta (positive)."""
    s = str(text).strip().lower()
    pos, total = 0, 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if not s or pos != len(s) or total <= 0:
        raise ConfigError(f"{field_name}: {text!r} is not a duration like 30m, 1h, 1h30m or 7d")
    return timedelta(seconds=total)


@dataclass
class RetrainConfig:
    """How a drift verdict launches retraining, and how often it may."""

    enabled: bool = True
    # argv template; placeholders: {model_name} {model_version} {dataset_version} {data_uri} {reason_file}
    # {init_from} (the served model, models:/name/version: the warm start)
    command: list[str] = field(
        default_factory=lambda: ["aidetect", "pipeline", "run", "training", "--local", "--data", "{data_uri}"]
    )
    data_uri: str = ""  # the labelled data to retrain on (folder, zip, parquet or s3://), for {data_uri}
    cooldown: str = "24h"  # no second launch for the same model within this window
    timeout_seconds: int = 6 * 3600  # the launcher's own run (a KFP submit returns in seconds)
    state_uri: str = ""  # JSON record of launches; "" = <AIDETECT_HOME>/monitoring/retrain-state.json

    def validate(self) -> None:
        if self.enabled and not self.command:
            raise ConfigError("retrain.command: must name a program when retrain.enabled is true")
        parse_duration(self.cooldown, "retrain.cooldown")
        if self.timeout_seconds < 1:
            raise ConfigError("retrain.timeout_seconds: must be at least 1")


@dataclass
class DriftConfig:
    """Where the logs and references are, and when a window counts as drifted."""

    model_name: str = ""  # registered model name (also the log folder); "" = the registry default
    log_uri: str = ""  # inference log root; "" = <AIDETECT_HOME>/inference-log
    reports_uri: str = ""  # verdicts + HTML reports; "" = <AIDETECT_HOME>/drift
    since: str = "1h"  # the current window: rows logged in the last <since>
    min_rows: int = 200  # fewer rows than this: no verdict (exit 3), never a drift alarm
    max_rows: int = 20_000  # larger windows are subsampled (seeded) to bound time and test power
    min_reference_rows: int = 200  # a smaller reference profile is refused as unreliable
    features: list[str] = field(default_factory=lambda: list(FEATURE_COLUMNS))
    method: str = "ks"  # Evidently stat test per feature
    threshold: float = 0.01  # p-value below (or distance at/above) this: the feature drifted
    drift_share: float = 0.5  # data drift when at least this share of features drifted ...
    critical_features: list[str] = field(default_factory=lambda: ["jpeg_quality", "width", "height"])
    # ... or any critical feature drifted (compression and resolution changes break detectors)
    prediction_column: str = "probability_fake"
    prediction_method: str = "ks"
    prediction_threshold: float = 0.01
    pushgateway_url: str = ""  # e.g. http://pushgateway.monitoring:9091; "" = textfile only
    metrics_job: str = "aidetect-drift"
    retrain: RetrainConfig = field(default_factory=RetrainConfig)

    def validate(self) -> None:
        parse_duration(self.since, "since")
        if self.min_rows < 1:
            raise ConfigError(f"min_rows: must be at least 1, got {self.min_rows}")
        if self.min_reference_rows < 1:
            raise ConfigError(f"min_reference_rows: must be at least 1, got {self.min_reference_rows}")
        if self.max_rows < self.min_rows:
            raise ConfigError(f"max_rows: must be >= min_rows ({self.min_rows}), got {self.max_rows}")
        if not self.features:
            raise ConfigError("features: at least one feature column is required")
        unknown = sorted(set(self.critical_features) - set(self.features))
        if unknown:
            raise ConfigError(f"critical_features: {unknown[0]!r} is not one of features")
        if not 0.0 < self.drift_share <= 1.0:
            raise ConfigError(f"drift_share: must be in (0, 1], got {self.drift_share}")
        for name in ("threshold", "prediction_threshold"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be positive")


def load_drift_config(path: str | None = None, overrides: dict | None = None) -> DriftConfig:
    from aidetect.config import load

    return load(DriftConfig, "drift", path=path, overrides=overrides)


@dataclass
class CanaryConfig:
    """``configs/canary.yaml``: how ``aidetect canary analyze`` compares the canary with the stable track."""

    prometheus_url: str = "http://127.0.0.1:9090"
    window: str = "10m"
    selector: str = ""
    track_label: str = "track"
    stable_track: str = "stable"
    canary_track: str = "canary"
    min_requests: int = 200
    max_error_rate_increase: float = 0.01
    max_p95_ratio: float = 1.5
    min_p95_increase_ms: float = 25.0
    max_prediction_shift: float = 0.1
    timeout_s: float = 10.0

    def validate(self) -> None:
        if not _PROM_DURATION.match(self.window):
            raise ConfigError(f"window: {self.window!r} is not a Prometheus duration like 5m")
        if self.min_requests < 1:
            raise ConfigError("min_requests: must be at least 1")
        if self.max_p95_ratio < 1:
            raise ConfigError("max_p95_ratio: must be >= 1")
        if not 0 < self.max_prediction_shift <= 1:
            raise ConfigError("max_prediction_shift: must be in (0, 1]")
        if self.stable_track == self.canary_track:
            raise ConfigError("canary_track: must differ from stable_track")


def load_canary_config(path: str | None = None, overrides: dict | None = None) -> CanaryConfig:
    from aidetect.config import load

    return load(CanaryConfig, "canary", path=path, overrides=overrides)
