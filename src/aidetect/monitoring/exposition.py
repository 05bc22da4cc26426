"""Drift results as Prometheus metrics: a textfile, and optionally a push to a Pushgateway.

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
    try:
        push_to_gateway(
            gateway_url,
            job=job,
            registry=reg,
            grouping_key={"model": model_name, "version": str(model_version)},
            timeout=10,
        )
    except OSError as exc:
        raise ServiceUnavailableError(f"Pushgateway {gateway_url} unreachable: {exc}") from None
