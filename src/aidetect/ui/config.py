"""Review page settings (``configs/review_page.yaml``, env ``AIDETECT_REVIEW_PAGE__<FIELD>``)."""

from __future__ import annotations

from dataclasses import dataclass

from aidetect.errors import ConfigError


@dataclass
class ReviewPageConfig:
    """Where the page keeps uncertain uploads and labels, and which explainer draws heatmaps."""

    enabled: bool = True
    store_uri: str = ""  # uncertain uploads kept for review; "": $AIDETECT_HOME/review
    label_log_uri: str = ""  # the append-only label log; "": $AIDETECT_HOME/labels
    # Grad-CAM explainer base URL (the KServe explainer, e.g. http://detector-explainer): "" = none
    explainer_url: str = ""
    explainer_timeout_s: float = 30.0
    # an upload is queued for review when its fake score falls in [uncertain_low, uncertain_high]
    # and no provenance signal decided its verdict
    uncertain_low: float = 0.2
    uncertain_high: float = 0.8
    queue_size: int = 50  # items shown at once, newest first
    max_note_bytes: int = 16 * 1024  # the client's result summary stored beside a queued image

    def validate(self) -> None:
        if not 0.0 <= self.uncertain_low <= self.uncertain_high <= 1.0:
            raise ConfigError("uncertain_low: need 0 <= uncertain_low <= uncertain_high <= 1")
        if self.queue_size < 1 or self.max_note_bytes < 256:
            raise ConfigError("queue_size: must be >= 1 (and max_note_bytes >= 256)")
        if self.explainer_url and not self.explainer_url.startswith(("http://", "https://")):
            raise ConfigError(f"explainer_url: {self.explainer_url!r} is not an http(s) URL")
