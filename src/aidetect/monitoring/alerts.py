"""Prometheus recording and alert rules for the service, the model, drift, live quality and the canary.

Serving rules group by ``model`` as well as namespace and track: production's stable track serves the
image model (``aidetect``) and the text detector (``aidetect-text``), and the canary is compared only
with the stable track of its own model.

Rendered into the PrometheusRule ``manifests/monitoring/prometheusrule.yaml`` by
``python -m aidetect.monitoring.generate``; ``promtool check rules`` and ``promtool test rules``
(tests/infra) check them. Thresholds are module constants so the runbook in docs/monitoring.md and the
tests name the same numbers.
"""

from __future__ import annotations

from typing import Any

from aidetect.monitoring.promql import POSITIVE_LABEL, PREDICTOR_JOB

ERROR_RATIO = 0.05  # share of 5xx over 5 minutes
LATENCY_P95_SECONDS = 0.5
MIN_RPS = 0.1  # below this the ratios are noise: no error/latency alerts
CANARY_EXTRA_ERROR_RATIO = 0.02  # canary error ratio above stable's by more than this
CANARY_LATENCY_FACTOR = 1.5  # canary p95 above stable p95 by this factor
CANARY_FAKE_RATE_DELTA = 0.15  # canary fake rate differs from stable's by more than this
DRIFT_CHECK_MAX_AGE_SECONDS = 3 * 3600
_LIVE = "max by (model, version, track) "  # one series per group, whoever pushed or scraped it
RUNBOOK = "https://github.com/aidetect/aidetect/blob/main/docs/monitoring.md"  # one heading per alert

UP = f'up{{job=~"{PREDICTOR_JOB}"}}'

RECORDING_RULES: list[dict[str, str]] = [
    {
        "record": "aidetect:requests:rate5m",
        "expr": "sum by (namespace, model, track) (rate(aidetect_requests_total[5m]))",
    },
    {  # "or ... * 0": a track without a single error has ratio 0, not no series (canary compares to it)
        "record": "aidetect:server_error_ratio:rate5m",
        "expr": "(\n  sum by (namespace, model, track)"
        ' (rate(aidetect_requests_total{status="server_error"}[5m]))\n'
        "  or 0 * sum by (namespace, model, track) (rate(aidetect_requests_total[5m]))\n)\n"
        "/\nsum by (namespace, model, track) (rate(aidetect_requests_total[5m]))",
    },
    {
        "record": "aidetect:request_latency_p95:rate5m",
        "expr": "histogram_quantile(0.95,\n"
        "  sum by (le, namespace, model, track) (rate(aidetect_request_duration_seconds_bucket[5m])))",
    },
    {
        "record": "aidetect:fake_rate:rate30m",
        "expr": "(\n  sum by (namespace, model, track)"
        f" (rate(aidetect_predictions_total{{{POSITIVE_LABEL}}}[30m]))\n"
        "  or 0 * sum by (namespace, model, track) (rate(aidetect_predictions_total[30m]))\n)\n"
        "/\nsum by (namespace, model, track) (rate(aidetect_predictions_total[30m]))",
    },
]


def _alert(name: str, expr: str, for_: str, severity: str, summary: str, description: str) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if for_ != "0m":
        rule["for"] = for_
    rule["labels"] = {"severity": severity, "team": "ml-platform"}
    rule["annotations"] = {
        "summary": summary,
        "description": description,
        "runbook_url": f"{RUNBOOK}#{name.lower()}",
    }
    return rule


ALERT_RULES: list[dict[str, Any]] = [
    _alert(
        "AidetectPredictorDown",
        f"{UP} == 0",
        "2m",
        "critical",
        "aidetect predictor {{ $labels.instance }} ({{ $labels.track }}) is down",
        "Prometheus cannot scrape the predictor in {{ $labels.namespace }} for 2 minutes.",
    ),
    _alert(
        "AidetectNoPredictor",
        f"absent({UP} == 1)",
        "5m",
        "critical",
        "No aidetect predictor is up",
        "No predictor target has been up for 5 minutes: uploads are not being screened.",
    ),
    _alert(
        "AidetectModelNotReady",
        f"(max by (namespace, track, instance) ({UP}) == 1)\n"
        "unless on (namespace, track, instance)\n"
        "max by (namespace, track, instance) (aidetect_model_info)",
        "5m",
        "critical",
        "aidetect predictor {{ $labels.instance }} ({{ $labels.track }}) serves no model",
        "The predictor answers scrapes but reports no loaded model (aidetect_model_info) for 5 minutes.",
    ),
    _alert(
        "AidetectHighErrorRate",
        f"aidetect:server_error_ratio:rate5m > {ERROR_RATIO}\n"
        f"and on (namespace, model, track) aidetect:requests:rate5m > {MIN_RPS}",
        "5m",
        "critical",
        "{{ $labels.model }} ({{ $labels.track }}) answers {{ $value | humanizePercentage }} of requests"
        " with errors",
        f"More than {ERROR_RATIO:.0%} of requests in {{{{ $labels.namespace }}}} failed with a server error"
        " for 5 minutes.",
    ),
    _alert(
        "AidetectHighLatency",
        f"aidetect:request_latency_p95:rate5m > {LATENCY_P95_SECONDS}\n"
        f"and on (namespace, model, track) aidetect:requests:rate5m > {MIN_RPS}",
        "10m",
        "warning",
        "{{ $labels.model }} ({{ $labels.track }}) p95 latency is {{ $value | humanizeDuration }}",
        f"p95 request latency above {LATENCY_P95_SECONDS}s in {{{{ $labels.namespace }}}} for 10 minutes.",
    ),
    _alert(
        "AidetectDataDrift",
        "max by (model, version) (aidetect_drift_detected) == 1",
        "0m",
        "warning",
        "Drift detected for {{ $labels.model }} v{{ $labels.version }}",
        "The last drift check found data or prediction drift; retraining is triggered within its cooldown."
        " See `aidetect drift status` and the HTML report.",
    ),
    _alert(
        "AidetectDriftCheckStale",
        "time() - max by (model) (aidetect_drift_last_check_timestamp_seconds)\n"
        f"> {DRIFT_CHECK_MAX_AGE_SECONDS}",
        "10m",
        "warning",
        "No drift verdict for {{ $labels.model }} in {{ $value | humanizeDuration }}",
        "The scheduled drift check has not produced a verdict (failing, or too few logged rows).",
    ),
    _alert(
        "AidetectModelDegraded",
        f"{_LIVE}(aidetect_live_f1)\n< on (model, version, track) {_LIVE}(aidetect_live_min_f1)\n"
        f"and on (model, version, track)\n  {_LIVE}(aidetect_live_labels)\n"
        f"  >= on (model, version, track) {_LIVE}(aidetect_live_min_labels)",
        "0m",
        "warning",
        "{{ $labels.model }} v{{ $labels.version }} ({{ $labels.track }}) live F1 is "
        '{{ $value | printf "%.3f" }}',
        "Reviewers' labels say the served model is under its F1 gate (quality.min_f1) over at least"
        " quality.min_labels labels; retraining is triggered within its cooldown."
        " See `aidetect quality check`.",
    ),
    _alert(
        "AidetectCanaryErrorRateHigh",
        'aidetect:server_error_ratio:rate5m{track="canary"}\n'
        "> on (namespace, model) group_left ()\n"
        f'  (aidetect:server_error_ratio:rate5m{{track="stable"}} + {CANARY_EXTRA_ERROR_RATIO})\n'
        f'and on (namespace, model, track) aidetect:requests:rate5m{{track="canary"}} > {MIN_RPS}',
        "5m",
        "critical",
        "aidetect canary fails more often than stable in {{ $labels.namespace }}",
        "Canary server-error ratio exceeds stable's by more than "
        f"{CANARY_EXTRA_ERROR_RATIO:.0%}: roll back the canary (revert its promotion PR).",
    ),
    _alert(
        "AidetectCanaryLatencyDegraded",
        'aidetect:request_latency_p95:rate5m{track="canary"}\n'
        f"> on (namespace, model) group_left\n  {CANARY_LATENCY_FACTOR} * "
        'aidetect:request_latency_p95:rate5m{track="stable"}\n'
        f'and on (namespace, model, track) aidetect:requests:rate5m{{track="canary"}} > {MIN_RPS}',
        "10m",
        "warning",
        "aidetect canary p95 latency is {{ $value | humanizeDuration }}, slower than stable",
        f"Canary p95 latency is more than {CANARY_LATENCY_FACTOR}x stable's for 10 minutes.",
    ),
    _alert(
        "AidetectCanaryFakeRateShift",
        'abs(aidetect:fake_rate:rate30m{track="canary"}\n'
        '  - on (namespace, model) group_left aidetect:fake_rate:rate30m{track="stable"})\n'
        f"> {CANARY_FAKE_RATE_DELTA}",
        "15m",
        "warning",
        "aidetect canary flags a different share of uploads than stable",
        f"Canary and stable fake rates differ by more than {CANARY_FAKE_RATE_DELTA:.0%} over 30 minutes:"
        " the new model behaves differently on live traffic.",
    ),
]


def rule_groups() -> list[dict[str, Any]]:
    """The rule groups, as Prometheus (and the PrometheusRule ``spec.groups``) expect them."""
    return [
        {"name": "aidetect.recording", "interval": "30s", "rules": RECORDING_RULES},
        {"name": "aidetect.alerts", "rules": ALERT_RULES},
    ]


def prometheus_rule(namespace: str = "monitoring") -> dict[str, Any]:
    """The PrometheusRule custom resource (label ``release: prometheus`` for the operator's selector)."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "aidetect",
            "namespace": namespace,
            "labels": {"release": "prometheus", "app.kubernetes.io/part-of": "aidetect"},
        },
        "spec": {"groups": rule_groups()},
    }
