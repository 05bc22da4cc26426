"""PromQL shared by the Grafana dashboards and the alert rules (one place for every expression).

Metric names are fixed in docs/CONTRACTS.md. Labels the queries rely on:

- ``model`` on every serving series (the served model name: ``aidetect`` for the image model's stable
  and canary tracks, ``aidetect-text`` for the text detector);
- ``track`` (``stable`` | ``canary``), set by the ServiceMonitor's relabeling (manifests/base/track);
- ``namespace``, added by the Prometheus Operator (one namespace per environment).

Dashboard expressions take Grafana variables (``$namespace``, ``$model``, ``$__rate_interval``);
:func:`concrete` substitutes them so promtool (and the live-Prometheus test) can run the same text.
"""

from __future__ import annotations

RATE = "$__rate_interval"
SEL = 'namespace=~"$namespace", model=~"$model"'  # the dashboard's selector on serving series
PREDICTOR_JOB = "aidetect.*predictor.*"  # ServiceMonitor job names (KServe predictor services)
# the positive class of each modality's predictions: the image model's FAKE, the text detector's ai
# (configs/data.yaml, configs/text_data.yaml)
POSITIVE_LABEL = 'label=~"FAKE|ai"'


def requests_per_second(by: str = "track") -> str:
    return f"sum by ({by}) (rate(aidetect_requests_total{{{SEL}}}[{RATE}]))"


def requests_by_status() -> str:
    return f"sum by (status) (rate(aidetect_requests_total{{{SEL}}}[{RATE}]))"


def latency_quantile(q: float, by: str = "track") -> str:
    inner = f"sum by (le, {by}) (rate(aidetect_request_duration_seconds_bucket{{{SEL}}}[{RATE}]))"
    return f"histogram_quantile({q}, {inner})"


def _ratio(part: str, total: str) -> str:
    """``part / total`` that is 0 (not absent) when ``part`` has no series yet."""
    return f"({part} or 0 * {total}) / {total}"


def error_ratio(by: str = "track") -> str:
    errors = f'sum by ({by}) (rate(aidetect_requests_total{{{SEL}, status="server_error"}}[{RATE}]))'
    total = f"sum by ({by}) (rate(aidetect_requests_total{{{SEL}}}[{RATE}]))"
    return _ratio(errors, total)


def rejected_per_second() -> str:
    return f"sum by (reason) (rate(aidetect_rejected_inputs_total{{{SEL}}}[{RATE}]))"


def process_cpu() -> str:
    """CPU seconds per second of predictor processes (only targets that expose aidetect_model_info)."""
    info = f"aidetect_model_info{{{SEL}}}"
    return f"rate(process_cpu_seconds_total[{RATE}]) and on (instance) {info}"


def process_memory() -> str:
    return f"process_resident_memory_bytes and on (instance) aidetect_model_info{{{SEL}}}"


def container_cpu_throttling() -> str:
    """Share of CFS periods throttled (cAdvisor; in a cluster only)."""
    sel = 'namespace=~"$namespace", container="kserve-container"'
    throttled = f"sum by (pod) (rate(container_cpu_cfs_throttled_periods_total{{{sel}}}[{RATE}]))"
    periods = f"sum by (pod) (rate(container_cpu_cfs_periods_total{{{sel}}}[{RATE}]))"
    return f"{throttled} / {periods}"


def fake_rate(by: str = "track") -> str:
    fake = f"sum by ({by}) (rate(aidetect_predictions_total{{{SEL}, {POSITIVE_LABEL}}}[{RATE}]))"
    total = f"sum by ({by}) (rate(aidetect_predictions_total{{{SEL}}}[{RATE}]))"
    return _ratio(fake, total)


def probability_heatmap() -> str:
    return f"sum by (le) (increase(aidetect_fake_probability_bucket{{{SEL}}}[{RATE}]))"


def mean_probability(by: str = "track") -> str:
    total = f"sum by ({by}) (rate(aidetect_fake_probability_sum{{{SEL}}}[{RATE}]))"
    count = f"sum by ({by}) (rate(aidetect_fake_probability_count{{{SEL}}}[{RATE}]))"
    return f"{total} / {count}"


def model_info() -> str:
    return f"max by (model, track, version, variant, dataset_version) (aidetect_model_info{{{SEL}}})"


# -- drift and pipelines (pushed by batch jobs; see aidetect.monitoring.exposition) ---------------------

DRIFT_SEL = 'model=~"$model"'


def drift_share() -> str:
    return f"max by (model, version) (aidetect_drift_share{{{DRIFT_SEL}}})"


def drift_detected() -> str:
    return f"max by (model, version) (aidetect_drift_detected{{{DRIFT_SEL}}})"


def top_drifting_features(k: int = 8) -> str:
    return f"topk({k}, max by (feature) (aidetect_drift_feature_strength{{{DRIFT_SEL}}}))"


def drift_check_age() -> str:
    return f"time() - max by (model) (aidetect_drift_last_check_timestamp_seconds{{{DRIFT_SEL}}})"


def drift_window_rows() -> str:
    return f"max by (model, version) (aidetect_drift_window_rows{{{DRIFT_SEL}}})"


def retrain_launches() -> str:
    return f"max by (model) (aidetect_retrain_launches{{{DRIFT_SEL}}})"


def retrain_age() -> str:
    return f"time() - max by (model) (aidetect_retrain_last_trigger_timestamp_seconds{{{DRIFT_SEL}}})"


def pipeline_last_run_age() -> str:
    return "time() - max by (pipeline, status) (aidetect_pipeline_last_run_timestamp_seconds)"


def pipeline_last_success_age() -> str:
    return "time() - max by (pipeline) (aidetect_pipeline_last_success_timestamp_seconds)"


def gate_status() -> str:
    return f"max by (model, version) (aidetect_gate_passed{{{DRIFT_SEL}}})"


def live_quality(stat: str) -> str:
    """One live-quality statistic (``f1``, ``accuracy``, ``labels``, ``min_f1``...) per version and track."""
    return f"max by (model, version, track) (aidetect_live_{stat}{{{DRIFT_SEL}}})"


def concrete(expr: str, rate: str = "5m", namespace: str = ".*", model: str = ".*") -> str:
    """The expression with Grafana's variables replaced by values Prometheus understands."""
    return expr.replace("$__rate_interval", rate).replace("$namespace", namespace).replace("$model", model)
