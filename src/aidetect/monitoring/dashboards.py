"""Grafana dashboards as code (grafana-foundation-sdk), written to ``manifests/monitoring/dashboards/``.

Four dashboards for the operators of the service: **service** (traffic, latency, errors, saturation),
**model** (fake rate, probability distribution, canary vs stable, live quality from reviewers' labels;
every serving panel split by ``model``: the image model and the text detector),
**data** (drift share, top drifting features, retraining) and **pipelines** (last runs, gate status).
Every query comes from :mod:`aidetect.monitoring.promql`; :func:`queries` lists them so tests can check
each one parses and the main ones return data from a live server. Regenerate with
``python -m aidetect.monitoring.generate``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders import bargauge, heatmap, stat, table, timeseries
from grafana_foundation_sdk.builders.common import ReduceDataOptions
from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    DatasourceVariable,
    QueryVariable,
    Row,
    ThresholdsConfig,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    VariableRefresh,
    VariableSort,
)

from aidetect.monitoring import promql as q

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
TAGS = ["aidetect", "generated"]


@dataclass(frozen=True)
class Query:
    """One panel query: the PromQL, its legend, and whether a live server must return data for it."""

    expr: str
    legend: str = ""
    main: bool = False  # asserted against a live `aidetect serve` in the Prometheus test


def _target(query: Query, ref: str) -> Dataquery:
    target = Dataquery().expr(query.expr).ref_id(ref).datasource(DATASOURCE)
    return target.legend_format(query.legend) if query.legend else target


def _with_targets(panel: Any, queries: Sequence[Query]) -> Any:
    for i, query in enumerate(queries):
        panel = panel.with_target(_target(query, chr(ord("A") + i)))
    return panel.datasource(DATASOURCE)


def _thresholds(*steps: tuple[float | None, str]) -> ThresholdsConfig:
    return ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps([Threshold(v, c) for v, c in steps])


def _ts(title: str, queries: Sequence[Query], unit: str, width: int = 12, desc: str = "") -> Any:
    panel = timeseries.Panel().title(title).unit(unit).span(width).height(8).description(desc)
    return _with_targets(panel.fill_opacity(10).line_width(1), queries)


def _stat(title: str, queries: Sequence[Query], unit: str, steps: Sequence[tuple[float | None, str]],
          width: int = 6, desc: str = "") -> Any:  # fmt: skip
    panel = stat.Panel().title(title).unit(unit).span(width).height(5).description(desc)
    panel = panel.reduce_options(ReduceDataOptions().calcs(["lastNotNull"]))
    return _with_targets(panel.thresholds(_thresholds(*steps)), queries)


def _variables(board: Dashboard, serving: bool = True) -> Dashboard:
    board = board.with_variable(DatasourceVariable("datasource").label("Data source").type("prometheus"))
    source = "aidetect_model_info" if serving else "aidetect_drift_share"
    if serving:
        board = board.with_variable(
            QueryVariable("namespace")
            .label("Namespace")
            .datasource(DATASOURCE)
            .query(f"label_values({source}, namespace)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
            .include_all(True)
            .all_value(".*")
            .multi(True)
        )
    return board.with_variable(_model_variable(f"label_values({source}, model)"))


def _model_variable(query: str) -> QueryVariable:
    return (
        QueryVariable("model")
        .label("Model")
        .datasource(DATASOURCE)
        .query(query)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .include_all(True)
        .all_value(".*")
        .multi(True)
    )


def _board(uid: str, title: str, description: str) -> Dashboard:
    return (
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .refresh("30s")
        .time("now-3h", "now")
        .timezone("utc")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .editable()
    )


# -- the four dashboards ------------------------------------------------------------------------------

# Serving panels split by model as well as track: staging and production serve the image model
# (`aidetect`) and the text detector (`aidetect-text`) side by side (pick one with the Model variable).
BY = "model, track"
SERVICE = {
    "rps": [Query(q.requests_per_second(BY), "{{model}} {{track}}", main=True)],
    "status": [Query(q.requests_by_status(), "{{status}}", main=True)],
    "latency": [
        Query(q.latency_quantile(0.5, BY), "p50 {{model}} {{track}}", main=True),
        Query(q.latency_quantile(0.95, BY), "p95 {{model}} {{track}}", main=True),
        Query(q.latency_quantile(0.99, BY), "p99 {{model}} {{track}}", main=True),
    ],
    "errors": [Query(q.error_ratio(BY), "{{model}} {{track}}")],
    "rejected": [Query(q.rejected_per_second(), "{{reason}}")],
    "cpu": [Query(q.process_cpu(), "{{instance}}", main=True)],
    "memory": [Query(q.process_memory(), "{{instance}}", main=True)],
    "throttling": [Query(q.container_cpu_throttling(), "{{pod}}")],
}

MODEL = {
    "fake_rate": [Query(q.fake_rate(BY), "{{model}} {{track}}", main=True)],
    "probability": [Query(q.probability_heatmap(), "{{le}}", main=True)],
    "mean_probability": [Query(q.mean_probability(BY), "{{model}} {{track}}", main=True)],
    "canary_latency": [Query(q.latency_quantile(0.95), "p95 {{track}}")],
    "canary_errors": [Query(q.error_ratio(), "{{track}}")],
    "info": [Query(q.model_info(), "", main=True)],
    # pushed by `aidetect quality check` (reviewers' labels joined with the inference log)
    "live_f1": [
        Query(q.live_quality("f1"), "v{{version}} {{track}}"),
        Query(q.live_quality("min_f1"), "gate v{{version}} {{track}}"),
    ],
    "live_accuracy": [Query(q.live_quality("accuracy"), "v{{version}} {{track}}")],
    "live_labels": [Query(q.live_quality("labels"), "v{{version}} {{track}}")],
}

DATA = {
    "drift_share": [Query(q.drift_share(), "{{model}} v{{version}}")],
    "drift_detected": [Query(q.drift_detected(), "{{model}} v{{version}}")],
    "top_features": [Query(q.top_drifting_features(), "{{feature}}")],
    "check_age": [Query(q.drift_check_age(), "{{model}}")],
    "window_rows": [Query(q.drift_window_rows(), "{{model}} v{{version}}")],
    "retrain_launches": [Query(q.retrain_launches(), "{{model}}")],
    "retrain_age": [Query(q.retrain_age(), "{{model}}")],
}

PIPELINES = {
    "last_run": [Query(q.pipeline_last_run_age(), "{{pipeline}} ({{status}})")],
    "last_success": [Query(q.pipeline_last_success_age(), "{{pipeline}}")],
    "gates": [Query(q.gate_status(), "{{model}} v{{version}}")],
    "retrain_age": [Query(q.retrain_age(), "{{model}}")],
}

RED, GREEN, ORANGE = "red", "green", "orange"
POSITIVE_SHARE = "Share of predictions in the positive class: FAKE (image model), ai (text detector)"
IMAGE_ONLY = "Select the image model (aidetect): the text detector has no canary and counts as stable"


def service_dashboard() -> Dashboard:
    s = SERVICE
    return (
        _variables(_board("aidetect-service", "aidetect / Service", "Traffic, latency, errors, saturation."))
        .with_row(Row("Traffic and errors"))
        .with_panel(_ts("Requests per second", s["rps"], "reqps"))
        .with_panel(_ts("Requests by outcome", s["status"], "reqps"))
        .with_panel(_ts("Server error ratio", s["errors"], "percentunit", desc="5xx / all requests"))
        .with_panel(_ts("Rejected inputs", s["rejected"], "reqps", desc="Refused images, by reason"))
        .with_row(Row("Latency"))
        .with_panel(_ts("Latency p50 / p95 / p99", s["latency"], "s", width=24))
        .with_row(Row("Saturation"))
        .with_panel(_ts("Predictor CPU", s["cpu"], "percentunit", width=8, desc="CPU seconds per second"))
        .with_panel(_ts("Predictor memory", s["memory"], "bytes", width=8))
        .with_panel(_ts("CPU throttling", s["throttling"], "percentunit", width=8, desc="cAdvisor, cluster"))
    )


def model_dashboard() -> Dashboard:
    m = MODEL
    info = _with_targets(table.Panel().title("Served versions").span(24).height(5), m["info"])
    probability = _with_targets(
        heatmap.Panel().title("Fake probability distribution").span(12).height(8), m["probability"]
    )
    return (
        _variables(_board("aidetect-model", "aidetect / Model", "What the model says, per track."))
        .with_row(Row("Served model"))
        .with_panel(info)
        .with_row(Row("Predictions"))
        .with_panel(_ts("Fake rate (canary vs stable)", m["fake_rate"], "percentunit", desc=POSITIVE_SHARE))
        .with_panel(probability)
        .with_panel(_ts("Mean fake probability", m["mean_probability"], "percentunit"))
        .with_row(Row("Canary vs stable"))
        .with_panel(_ts("p95 latency by track", m["canary_latency"], "s", width=12, desc=IMAGE_ONLY))
        .with_panel(
            _ts("Server error ratio by track", m["canary_errors"], "percentunit", width=12, desc=IMAGE_ONLY)
        )
        .with_row(Row("Live quality (reviewers' labels)"))
        .with_panel(
            _ts(
                "Live F1 by version and track",
                m["live_f1"],
                "percentunit",
                width=10,
                desc="F1 on reviewers' labels (the gates' rule) against the configured gate",
            )
        )
        .with_panel(_ts("Live accuracy by version and track", m["live_accuracy"], "percentunit", width=10))
        .with_panel(
            _stat(
                "Labels behind live quality",
                m["live_labels"],
                "none",
                [(None, ORANGE), (50.0, GREEN)],
                width=4,
            )
        )
    )


def data_dashboard() -> Dashboard:
    d = DATA
    top = _with_targets(
        bargauge.Panel().title("Top drifting features").unit("none").span(12).height(8)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]))
        .description("Drift strength: 1 is the threshold, higher drifts more")
        .thresholds(_thresholds((None, GREEN), (1.0, RED))),
        d["top_features"],
    )  # fmt: skip
    return (
        _variables(_board("aidetect-data", "aidetect / Data drift", "Drift checks and retraining."), False)
        .with_row(Row("Latest check"))
        .with_panel(_stat("Drift detected", d["drift_detected"], "none", [(None, GREEN), (1.0, RED)]))
        .with_panel(_stat("Drift share", d["drift_share"], "percentunit", [(None, GREEN), (0.5, RED)]))
        .with_panel(_stat("Since last check", d["check_age"], "s", [(None, GREEN), (10800.0, RED)]))
        .with_panel(_stat("Rows in window", d["window_rows"], "none", [(None, RED), (200.0, GREEN)]))
        .with_row(Row("Features"))
        .with_panel(top)
        .with_panel(_ts("Drift share over time", d["drift_share"], "percentunit"))
        .with_row(Row("Retraining"))
        .with_panel(_stat("Retrain launches", d["retrain_launches"], "none", [(None, GREEN)], width=12))
        .with_panel(_stat("Since last retrain", d["retrain_age"], "s", [(None, GREEN)], width=12))
    )


def pipelines_dashboard() -> Dashboard:
    p = PIPELINES
    return (
        _board("aidetect-pipelines", "aidetect / Pipelines", "Training and monitoring runs, gates.")
        .with_variable(DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(_model_variable("label_values(aidetect_gate_passed, model)"))
        .with_row(Row("Runs"))
        .with_panel(
            _stat("Since last run", p["last_run"], "s", [(None, GREEN), (172800.0, ORANGE)], width=12)
        )
        .with_panel(_stat("Since last success", p["last_success"], "s", [(None, GREEN), (259200.0, RED)], 12))
        .with_row(Row("Gates and retraining"))
        .with_panel(_stat("Gate passed", p["gates"], "none", [(None, RED), (1.0, GREEN)], width=12))
        .with_panel(_stat("Since last retrain trigger", p["retrain_age"], "s", [(None, GREEN)], width=12))
    )


BUILDERS = {
    "aidetect-service": (service_dashboard, SERVICE),
    "aidetect-model": (model_dashboard, MODEL),
    "aidetect-data": (data_dashboard, DATA),
    "aidetect-pipelines": (pipelines_dashboard, PIPELINES),
}


def render_all() -> dict[str, str]:
    """``{file name: dashboard JSON}`` for every dashboard (stable output: sorted keys, 2-space indent)."""
    encoder = JSONEncoder(sort_keys=True, indent=2)
    return {f"{uid}.json": encoder.encode(build().build()) + "\n" for uid, (build, _) in BUILDERS.items()}


def queries() -> list[Query]:
    """Every query of every dashboard, de-duplicated, in a stable order."""
    seen: dict[str, Query] = {}
    for _, panels in BUILDERS.values():
        for group in panels.values():
            for query in group:
                prior = seen.get(query.expr)
                if prior is None or (query.main and not prior.main):
                    seen[query.expr] = query
    return list(seen.values())


def panel_exprs(dashboard_json: str) -> list[str]:
    """The PromQL of every target in a rendered dashboard (for tests and reviews)."""
    board = json.loads(dashboard_json)
    return [t["expr"] for p in board.get("panels", []) for t in p.get("targets", []) if "expr" in t]
