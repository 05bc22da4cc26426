"""Prometheus metrics of the predictor (names and labels fixed in docs/CONTRACTS.md).

They live in prometheus_client's default registry, which KServe's ``/metrics`` route exposes.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PROBABILITY_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))

REQUEST_DURATION = Histogram(
    "aidetect_request_duration_seconds",
    "Inference request latency as seen by the server.",
    ["model", "protocol", "status"],
    buckets=LATENCY_BUCKETS,
)
REQUESTS = Counter(
    "aidetect_requests_total",
    "Inference requests by outcome (ok | client_error | server_error).",
    ["model", "protocol", "status"],
)
PREDICTIONS = Counter("aidetect_predictions_total", "Predicted images by label.", ["model", "label"])
FAKE_PROBABILITY = Histogram(
    "aidetect_fake_probability",
    "Probability of the positive (fake) class per predicted image.",
    ["model"],
    buckets=PROBABILITY_BUCKETS,
)
VERDICTS = Counter(
    "aidetect_verdicts_total",
    "Verdicts by kind (ai-generated | camera-capture | likely-ai | unknown), see configs/verdict.yaml.",
    ["model", "verdict"],
)
REJECTED_INPUTS = Counter(
    "aidetect_rejected_inputs_total", "Inputs refused by the server, by reason.", ["model", "reason"]
)
CAPTURED = Counter("aidetect_captured_total", "Received images kept in the image store.", ["model"])
CAPTURE_DROPPED = Counter(
    "aidetect_capture_dropped_total",
    "Images the sampling wanted but did not keep, by reason (queue_full | store_error | shutdown).",
    ["model", "reason"],
)
MODEL_INFO = Gauge(
    "aidetect_model_info", "The served model (value 1).", ["model", "version", "variant", "dataset_version"]
)

OK, CLIENT_ERROR, SERVER_ERROR = "ok", "client_error", "server_error"


def observe_request(model: str, protocol: str, status: str, seconds: float) -> None:
    REQUEST_DURATION.labels(model, protocol, status).observe(seconds)
    REQUESTS.labels(model, protocol, status).inc()


def observe_predictions(model: str, labels: list[str], fake_probabilities: list[float] | None) -> None:
    for label in labels:
        PREDICTIONS.labels(model, label).inc()
    if fake_probabilities is not None:
        hist = FAKE_PROBABILITY.labels(model)
        for p in fake_probabilities:
            hist.observe(p)


def observe_verdicts(model: str, verdicts: list[str]) -> None:
    for verdict in verdicts:
        VERDICTS.labels(model, verdict).inc()


def reject(model: str, reason: str) -> None:
    REJECTED_INPUTS.labels(model, reason).inc()


def set_model_info(model: str, version: str, variant: str, dataset_version: str) -> None:
    MODEL_INFO.labels(model, version, variant, dataset_version).set(1)


class CaptureCounters:
    """The image capture's counters (:class:`aidetect.feedback.capture.CaptureMetrics`); holds no
    state, so it pickles into REST worker processes."""

    def captured(self, model: str) -> None:
        CAPTURED.labels(model).inc()

    def dropped(self, model: str, reason: str) -> None:
        CAPTURE_DROPPED.labels(model, reason).inc()
