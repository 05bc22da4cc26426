"""Closed-loop settings (``configs/feedback.yaml``, env ``AIDETECT_FEEDBACK__<SECTION>__<FIELD>``).

One section per part of the loop (docs/CONTRACTS.md, "The closed loop"); each part validates its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aidetect.errors import ConfigError


@dataclass
class CaptureConfig:
    """Which received images the predictor keeps, where, and for how long."""

    enabled: bool = True
    store_uri: str = ""  # content-addressed image store; "": $AIDETECT_HOME/captured (or s3://...)
    sample_rate: float = 0.05  # share of images kept at random
    model_rates: dict[str, float] = field(default_factory=dict)  # per served model name
    # the review policy: every image whose fake score falls in [uncertain_low, uncertain_high] is kept
    uncertain_low: float = 0.2
    uncertain_high: float = 0.8
    retention: str = "30d"  # images older than this (since last kept) are pruned
    max_store_bytes: int = 10 * 1024**3  # beyond: the oldest images are pruned first
    max_queue_bytes: int = 64 * 1024**2  # held in memory waiting for the writer; beyond: dropped, counted
    prune_every: str = "1h"  # the writer prunes this often (and when it has written past the cap)

    def validate(self) -> None:
        from aidetect.monitoring.config import parse_duration

        rates = [self.sample_rate, *self.model_rates.values()]
        if any(not 0.0 <= r <= 1.0 for r in rates):
            raise ConfigError("capture.sample_rate: rates must be in [0, 1]")
        parse_duration(self.retention, "capture.retention")
        parse_duration(self.prune_every, "capture.prune_every")
        if not 0.0 <= self.uncertain_low <= self.uncertain_high <= 1.0:
            raise ConfigError("capture.uncertain_low: need 0 <= uncertain_low <= uncertain_high <= 1")
        if self.max_store_bytes < 1 or self.max_queue_bytes < 1:
            raise ConfigError("capture.max_store_bytes: byte caps must be positive")


@dataclass
class LabelsConfig:
    """Where labels live and which one wins when people disagree."""

    root: str = ""  # the append-only label log; "": $AIDETECT_HOME/labels
    conflict_policy: str = "latest"  # latest | majority | priority | drop
    source_priority: list[str] = field(default_factory=lambda: ["review-page", "label-studio", "import"])

    def validate(self) -> None:
        if self.conflict_policy not in ("latest", "majority", "priority", "drop"):
            raise ConfigError(
                f"labels.conflict_policy: {self.conflict_policy!r} is not latest, majority, priority or drop"
            )


@dataclass
class ReviewConfig:
    """The Label Studio review queue."""

    url: str = "http://localhost:8090"
    token_env: str = "AIDETECT_LABEL_STUDIO_TOKEN"  # the env var holding the API token (never the token)
    project: str = "aidetect-review"
    timeout_s: float = 30.0
    log_uri: str = ""  # the inference log push reads kept rows from; "": drift's log_uri (as quality)
    since: str = "7d"  # push: kept images logged in this window
    max_tasks: int = 500  # push: at most this many new tasks per run, the least certain scores first
    # how a task shows its image: "" embeds the bytes (data URI); or a URL template with {sha256}
    image_url: str = ""
    max_image_bytes: int = 4 * 1024**2  # embedded images above this are not pushed (counted)

    def validate(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"review.url: {self.url!r} is not an http(s) URL")
        if self.max_tasks < 1 or self.max_image_bytes < 1 or self.timeout_s <= 0:
            raise ConfigError("review.max_tasks: max_tasks, max_image_bytes and timeout_s must be positive")
        if self.image_url and "{sha256}" not in self.image_url:
            raise ConfigError(f"review.image_url: {self.image_url!r} has no {{sha256}} placeholder")


@dataclass
class QualityConfig:
    """When live accuracy from reviewers' labels counts as degradation."""

    since: str = "7d"
    min_labels: int = 50  # fewer joined labels: no verdict, never an alarm
    min_f1: float = 0.9
    bucket: str = "1d"  # the "over time" series: one point per bucket of prediction time
    reports_uri: str = ""  # verdicts + Evidently reports; "": $AIDETECT_HOME/quality (or s3://...)
    pushgateway_url: str = ""  # "": the textfile <home>/monitoring/quality.prom only
    metrics_job: str = "aidetect-quality"

    def validate(self) -> None:
        if self.min_labels < 1 or not 0.0 <= self.min_f1 <= 1.0:
            raise ConfigError("quality.min_labels: must be >= 1 (and min_f1 in [0, 1])")
        from aidetect.monitoring.config import parse_duration

        parse_duration(self.since, "quality.since")
        parse_duration(self.bucket, "quality.bucket")


@dataclass
class GrowConfig:
    """How labelled production images join a dataset version."""

    min_feedback_rows: int = 20  # fewer: refused, nothing written
    before_retrain: bool = True  # drift/degradation retraining grows the newest version first
    on_conflict: str = "base"  # a reviewer's label differs from the base's: base | feedback wins (reported)

    def validate(self) -> None:
        if self.min_feedback_rows < 1:
            raise ConfigError("grow.min_feedback_rows: must be >= 1")
        if self.on_conflict not in ("base", "feedback"):
            raise ConfigError(f"grow.on_conflict: {self.on_conflict!r} is not base or feedback")


@dataclass
class FeedbackConfig:
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    labels: LabelsConfig = field(default_factory=LabelsConfig)
    review: ReviewConfig = field(default_factory=ReviewConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    grow: GrowConfig = field(default_factory=GrowConfig)

    def validate(self) -> None:
        for part in (self.capture, self.labels, self.review, self.quality, self.grow):
            part.validate()
