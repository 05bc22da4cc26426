"""One drift check end to end: reference + window -> verdict, HTML, metrics, maybe a retrain.

Outputs, under ``reports_uri`` (local folder or ``s3://``)::

    <model>/<version>/<YYYYmmddTHHMMSSZ>-<id>/verdict.json   the verdict (also printed by the CLI)
    <model>/<version>/<YYYYmmddTHHMMSSZ>-<id>/report.html    Evidently's report
    <model>/<version>/latest.json                       the newest verdict for that version
    <model>/latest.json                                 the newest verdict for the model

and the Prometheus exposition in ``<AIDETECT_HOME>/monitoring/drift.prom`` (plus a Pushgateway push
when ``pushgateway_url`` is set).
"""

from __future__ import annotations

import json
import logging
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from aidetect import storage
from aidetect.errors import AidetectError
from aidetect.monitoring import exposition
from aidetect.monitoring.config import DriftConfig, parse_duration
from aidetect.monitoring.drift import compare, snapshot_html
from aidetect.monitoring.reference import Profile, load_reference, read_reference
from aidetect.monitoring.retrain import last_launch, load_launches, state_uri
from aidetect.monitoring.window import read_window
from aidetect.paths import home
from aidetect.refs import ModelRef

log = logging.getLogger(__name__)

VERDICT_FILE = "verdict.json"
REPORT_FILE = "report.html"
LATEST_FILE = "latest.json"


def default_model_name(cfg: DriftConfig) -> str:
    if cfg.model_name:
        return cfg.model_name
    from aidetect import registry

    return registry.model_name()


def log_uri(cfg: DriftConfig) -> str:
    return cfg.log_uri or str(home() / "inference-log")


def reports_uri(cfg: DriftConfig) -> str:
    return cfg.reports_uri or str(home() / "drift")


def textfile_path() -> Path:
    return home() / "monitoring" / "drift.prom"


def read_latest(cfg: DriftConfig, model_name: str, version: str | None = None) -> dict[str, Any] | None:
    """The newest verdict for a model (or one version of it), or ``None`` when there is none."""
    parts = [model_name, version, LATEST_FILE] if version else [model_name, LATEST_FILE]
    uri = storage.join(reports_uri(cfg), *parts)
    if not storage.exists(uri):
        return None
    return json.loads(storage.read_bytes(uri))


def publish(
    folder: str, verdict: dict[str, Any], files: dict[str, bytes], latest: list[str]
) -> dict[str, Any]:
    """Publish ``files`` plus ``verdict.json`` as one new folder (the verdict is the marker, written
    last), then copy the verdict to each ``latest`` URI; readers never see a half-written check."""
    verdict["verdict_uri"] = storage.join(folder, VERDICT_FILE)
    body = json.dumps(verdict, indent=2, default=str).encode()
    with tempfile.TemporaryDirectory(prefix="aidetect-verdict-") as tmp:
        for name, data in files.items():
            (Path(tmp) / name).write_bytes(data)
        (Path(tmp) / VERDICT_FILE).write_bytes(body)
        storage.publish_dir(tmp, folder, marker=VERDICT_FILE)
    for uri in latest:
        storage.write_bytes(uri, body)
    return verdict


def verdict_head(
    name: str, version: str, dataset_version: str, now: datetime, since: str, log: str
) -> dict[str, Any]:
    """The fields every monitoring verdict opens with: what was checked, over which window."""
    start = now - parse_duration(since, "since")
    return {
        "model_name": name,
        "model_version": version,
        "dataset_version": dataset_version,
        "checked_at": now.isoformat(),
        "window": {"since": since, "start": start.isoformat(), "end": now.isoformat()},
        "log_uri": log,
    }


def _publish(verdict: dict[str, Any], html: bytes, cfg: DriftConfig, stamp: str) -> dict[str, Any]:
    name, version = verdict["model_name"], verdict["model_version"]
    folder = storage.join(reports_uri(cfg), name, version, stamp)
    verdict["report_uri"] = storage.join(folder, REPORT_FILE)
    latest = [storage.join(reports_uri(cfg), name, version, LATEST_FILE)]
    return publish(
        folder, verdict, {REPORT_FILE: html}, [*latest, storage.join(reports_uri(cfg), name, LATEST_FILE)]
    )


def resolve_reference(model: ModelRef, reference_uri: str | None) -> tuple[pd.DataFrame, Profile]:
    """The reference from ``reference_uri`` when given, else the registered version's ``reference/``."""
    if reference_uri:
        return read_reference(reference_uri)
    return load_reference(model.name, model.ref)


def features_of_profile(cfg: DriftConfig, profile: Profile) -> DriftConfig:
    """The configured features, or the profile's own when it was built for another modality (a text
    model's reference holds text features, none of the image ones): drift then works on those."""
    if set(cfg.features) & set(profile.feature_columns):
        return cfg
    own = list(profile.feature_columns)
    return replace(cfg, features=own, critical_features=[c for c in cfg.critical_features if c in own])


def run_check(
    model: ModelRef,
    cfg: DriftConfig,
    *,
    reference_uri: str | None = None,
    now: datetime | None = None,
    retrain: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run one check and return the published verdict (a JSON-able dict).

    ``retrain(verdict)`` is called for a drifted verdict (``aidetect.flows.monitoring.retrainer``: grow
    first, then launch within the cooldown) and its answer recorded in it; a launch that fails is
    recorded too, the verdict still stands."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    reference, profile = resolve_reference(model, reference_uri)
    # the log folder is the model name; an alias resolves to the version the profile was built for
    name = model.name
    version = model.ref if model.ref.isdigit() else profile.model_version
    since = parse_duration(cfg.since, "since")
    cfg = features_of_profile(cfg, profile)
    wanted = [*cfg.features, cfg.prediction_column] if cfg.prediction_column in reference else cfg.features
    window = read_window(log_uri(cfg), name, since=since, until=now, model_version=version, columns=wanted)
    result, snapshot = compare(reference, window, cfg)
    # sorts by time; the suffix keeps two checks within one second (a re-run, a retry) apart
    stamp = f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    verdict: dict[str, Any] = {
        **verdict_head(name, version, profile.dataset_version, now, cfg.since, log_uri(cfg)),
        **result.to_dict(),
        "thresholds": {
            "method": cfg.method,
            "threshold": cfg.threshold,
            "drift_share": cfg.drift_share,
            "critical_features": list(cfg.critical_features),
            "prediction_method": cfg.prediction_method,
            "prediction_threshold": cfg.prediction_threshold,
            "min_rows": cfg.min_rows,
        },
        "retrain": None,
    }
    # known before publishing: the retrain cites it
    verdict["verdict_uri"] = storage.join(reports_uri(cfg), name, version, stamp, VERDICT_FILE)
    if result.drift_detected and retrain is not None:
        try:
            verdict["retrain"] = retrain(verdict)
        except AidetectError as exc:
            verdict["retrain"] = {"action": "failed", "reason": str(exc)}
    verdict = _publish(verdict, snapshot_html(snapshot), cfg, stamp)
    _export_metrics(result, name, version, cfg, now)
    return verdict


def _export_metrics(result: Any, name: str, version: str, cfg: DriftConfig, now: datetime) -> None:
    launches = load_launches(state_uri(cfg.retrain))
    previous = last_launch(launches, name)
    last = datetime.fromisoformat(previous.at).timestamp() if previous else None
    held = sum(1 for x in launches if x.model_name == name and x.status != "failed")
    reg = exposition.drift_registry(
        result,
        name,
        version,
        checked_at=now.timestamp(),
        last_trigger=last,
        launches=held,
    )
    exposition.write_textfile(reg, textfile_path())
    if cfg.pushgateway_url:
        exposition.push(reg, cfg.pushgateway_url, cfg.metrics_job, name, version)
