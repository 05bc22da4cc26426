"""Drift and live-quality results as Prometheus metrics: a textfile, and optionally a push to a Pushgateway.

The drift check is a batch job (a CronWorkflow pod that lives for seconds), so nothing stays up for
Prometheus to scrape. In a cluster the job pushes to a Prometheus Pushgateway, which Prometheus scrapes
with ``honor_labels: true``; on one machine the same exposition is written atomically to a ``.prom``
textfile that node-exporter's textfile collector (or anything else) can pick up. Both carry the
``model`` and ``version`` labels the dashboards and alerts select on.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, generate_latest, push_to_gateway

from aidetect import storage
from aidetect.errors import ServiceUnavailableError
from aidetect.monitoring.drift import DriftResult

log = logging.getLogger(__name__)

DRIFT_METRICS = {
    "aidetect_drift_detected": "1 when the last check found data or prediction drift.",
    "aidetect_drift_data_drift": "1 when the last check found data drift.",
    "aidetect_drift_prediction_drift": "1 when the last check found prediction drift.",
    "aidetect_drift_share": "Share of feature columns that drifted in the last check.",
    "aidetect_drift_window_rows": "Rows of the current window compared in the last check.",
    "aidetect_drift_last_check_timestamp_seconds": "Unix time of the last completed drift check.",
    "aidetect_drift_feature_strength": "Per column drift strength; 1 is the threshold, higher drifts more.",
    "aidetect_drift_feature_drifted": "Per column: 1 when the column drifted in the last check.",
    "aidetect_drift_feature_score": "Per column Evidently score of the last check (p-value or distance).",
    "aidetect_retrain_last_trigger_timestamp_seconds": "Unix time of the last retraining launch.",
    "aidetect_retrain_launches": "Retraining launches recorded for the model.",
}


def drift_registry(
    result: DriftResult,
    model_name: str,
    model_version: str,
    *,
    checked_at: float | None = None,
    last_trigger: float | None = None,
    launches: int | None = None,
) -> CollectorRegistry:
    """A fresh registry holding the metrics of one check (so a push replaces the previous group)."""
    reg = CollectorRegistry()
    labels = {"model": model_name, "version": str(model_version)}

    def gauge(name: str, value: float, extra: dict[str, str] | None = None) -> None:
        names = [*labels, *(extra or {})]
        g = metrics.get(name)
        if g is None:
            g = metrics[name] = Gauge(name, DRIFT_METRICS[name], names, registry=reg)
        g.labels(**labels, **(extra or {})).set(value)

    metrics: dict[str, Gauge] = {}
    gauge("aidetect_drift_detected", float(result.drift_detected))
    gauge("aidetect_drift_data_drift", float(result.data_drift))
    gauge("aidetect_drift_prediction_drift", float(result.prediction_drift))
    gauge("aidetect_drift_share", result.drift_share)
    gauge("aidetect_drift_window_rows", float(result.rows_current))
    gauge("aidetect_drift_last_check_timestamp_seconds", checked_at if checked_at else time.time())
    columns = [*result.features, *([result.prediction] if result.prediction else [])]
    for col in columns:
        gauge("aidetect_drift_feature_strength", col.strength, {"feature": col.column})
        gauge("aidetect_drift_feature_drifted", float(col.drifted), {"feature": col.column})
        gauge("aidetect_drift_feature_score", col.score, {"feature": col.column})
    if last_trigger is not None:
        gauge("aidetect_retrain_last_trigger_timestamp_seconds", last_trigger)
    if launches is not None:
        gauge("aidetect_retrain_launches", float(launches))
    return reg


def write_textfile(reg: CollectorRegistry, path: str | Path) -> None:
    """Write the exposition atomically (node-exporter never reads a half-written file)."""
    storage.write_bytes(str(path), generate_latest(reg))


def push(reg: CollectorRegistry, gateway_url: str, job: str, model_name: str, model_version: str) -> None:
    """PUT the group ``{job, model, version}`` to the Pushgateway (replacing its previous metrics)."""
    _push(reg, gateway_url, job, {"model": model_name, "version": str(model_version)})


def _push(reg: CollectorRegistry, gateway_url: str, job: str, grouping: dict[str, str]) -> None:
    try:
        push_to_gateway(gateway_url, job=job, registry=reg, grouping_key=grouping, timeout=10)
    except OSError as exc:
        raise ServiceUnavailableError(f"Pushgateway {gateway_url} unreachable: {exc}") from None


QUALITY_METRICS = {
    "aidetect_live_labels": "Labelled predictions behind the live metrics (newest per image).",
    "aidetect_live_accuracy": "Accuracy of the served model on reviewers' labels.",
    "aidetect_live_f1": "F1 on reviewers' labels: the fake class's for binary models, else macro.",
    "aidetect_live_ece": "Expected calibration error on reviewers' labels.",
    "aidetect_live_precision": "Per class precision on reviewers' labels.",
    "aidetect_live_recall": "Per class recall on reviewers' labels.",
    "aidetect_live_min_f1": "The configured F1 under which live quality is degraded (quality.min_f1).",
    "aidetect_live_min_labels": "Labels needed before live quality is judged (quality.min_labels).",
    "aidetect_live_last_check_timestamp_seconds": "Unix time of the last live quality check.",
}


def quality_registry(
    model_name: str,
    groups: list[dict],
    *,
    min_f1: float,
    min_labels: int,
    checked_at: float | None = None,
) -> CollectorRegistry:
    """The live metrics of one quality check, a series per (version, track) of ``groups`` (the
    verdict's). The thresholds ride along so the alert applies the configured rule, not a copy of it."""
    reg = CollectorRegistry()
    base = ["model", "version", "track"]
    last = "aidetect_live_last_check_timestamp_seconds"
    g = {
        n: Gauge(n, h, [*base, "class"] if n.endswith(("precision", "recall")) else base, registry=reg)
        for n, h in QUALITY_METRICS.items()
        if n != last
    }
    nan = float("nan")
    for group in groups:
        key = {"model": model_name, "version": str(group["version"]), "track": str(group["track"])}
        g["aidetect_live_labels"].labels(**key).set(group["n"])
        for stat in ("accuracy", "f1", "ece"):
            value = group.get(stat)
            g[f"aidetect_live_{stat}"].labels(**key).set(nan if value is None else value)
        for stat in ("precision", "recall"):
            for cls, value in group[stat].items():
                g[f"aidetect_live_{stat}"].labels(**key, **{"class": cls}).set(
                    nan if value is None else value
                )
        g["aidetect_live_min_f1"].labels(**key).set(min_f1)
        g["aidetect_live_min_labels"].labels(**key).set(min_labels)
    Gauge(last, QUALITY_METRICS[last], ["model"], registry=reg).labels(model_name).set(
        checked_at if checked_at else time.time()
    )
    return reg


def push_quality(reg: CollectorRegistry, gateway_url: str, job: str, model_name: str) -> None:
    """PUT the group ``{job, model}``: one check covers every version and track of the model."""
    _push(reg, gateway_url, job, {"model": model_name})


PIPELINE_METRICS = {
    "aidetect_pipeline_last_run_timestamp_seconds": "Unix time the pipeline last finished, by status.",
    "aidetect_pipeline_last_success_timestamp_seconds": "Unix time the pipeline last succeeded.",
    "aidetect_gate_passed": "1 when the registered version passed its gates, else 0.",
}


def pipeline_registry(
    pipeline: str,
    status: str,
    *,
    finished_at: float | None = None,
    gate: tuple[str, str, bool] | None = None,
) -> CollectorRegistry:
    """Metrics of one finished run (``status``: succeeded | failed); ``gate`` = (model, version, passed)."""
    reg = CollectorRegistry()
    when = finished_at if finished_at is not None else time.time()
    name = "aidetect_pipeline_last_run_timestamp_seconds"
    Gauge(name, PIPELINE_METRICS[name], ["pipeline", "status"], registry=reg).labels(pipeline, status).set(
        when
    )
    if status == "succeeded":
        name = "aidetect_pipeline_last_success_timestamp_seconds"
        Gauge(name, PIPELINE_METRICS[name], ["pipeline"], registry=reg).labels(pipeline).set(when)
    if gate is not None:
        model, version, passed = gate
        name = "aidetect_gate_passed"
        g = Gauge(name, PIPELINE_METRICS[name], ["model", "version"], registry=reg)
        g.labels(model, str(version)).set(float(passed))
    return reg


def push_pipeline_run(
    gateway_url: str,
    pipeline: str,
    status: str,
    *,
    gate: tuple[str, str, bool] | None = None,
    job: str = "aidetect-pipelines",
) -> None:
    """Push a finished run to the Pushgateway (group ``{job, pipeline, status}``) for the Pipelines dashboard.

    Grouping by status keeps the last failed and the last succeeded run side by side.
    """
    reg = pipeline_registry(pipeline, status, gate=gate)
    _push(reg, gateway_url, job, {"pipeline": pipeline, "status": status})
