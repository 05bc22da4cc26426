"""The review page's queue of uncertain uploads and its uncertainty rule (local store)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from aidetect.config import load
from aidetect.errors import ConfigError, DataError
from aidetect.feedback.labels import LabelLog, LabelRecord
from aidetect.ui.config import ReviewPageConfig
from aidetect.ui.queue import ReviewQueue
from aidetect.ui.routes import is_uncertain


def test_an_item_leaves_the_queue_once_labelled_after_it_was_queued(tmp_path: Path) -> None:
    labels = LabelLog(str(tmp_path / "labels"))
    old = LabelRecord(hashlib.sha256(b"img-a").hexdigest(), "REAL", "csv", ts="2020-01-01T00:00:00+00:00")
    labels.append([old])  # a label from before the upload does not settle it
    queue = ReviewQueue(str(tmp_path / "review"), labels)
    a = queue.add(b"img-a", {"verdict": "unknown", "fake_score": 0.4})
    b = queue.add(b"img-b", {"verdict": "likely-ai", "fake_score": 0.6})
    assert {i["sha256"] for i in queue.pending(10)} == {a, b}
    assert queue.image(a) == b"img-a"
    labels.append([LabelRecord(a, "FAKE", "review-page")])
    assert [i["sha256"] for i in queue.pending(10)] == [b]
    assert queue.pending(10)[0]["result"]["fake_score"] == 0.6
    with pytest.raises(DataError, match="not a sha256"):
        queue.image("../../etc/passwd")
    with pytest.raises(DataError, match="no queued image"):
        queue.image("0" * 64)


@pytest.mark.parametrize(
    "result, queued",
    [
        ({"verdict": "unknown", "fake_score": 0.5}, True),
        ({"verdict": "likely-ai", "fake_score": 0.8}, True),
        ({"verdict": "likely-ai", "fake_score": 0.95}, False),  # confident detector
        ({"verdict": "ai-generated", "fake_score": 0.5}, False),  # a provenance signal decided
        ({"verdict": "unknown", "fake_score": "0.5"}, False),  # not a number
    ],
)
def test_uncertainty_rule(result: dict[str, object], queued: bool) -> None:
    assert is_uncertain(result, ReviewPageConfig()) is queued


def test_bad_page_config_names_the_field() -> None:
    with pytest.raises(ConfigError, match="uncertain_low"):
        load(ReviewPageConfig, "review_page", overrides={"uncertain_low": 0.9, "uncertain_high": 0.1})
    with pytest.raises(ConfigError, match="explainer_url"):
        load(ReviewPageConfig, "review_page", overrides={"explainer_url": "file:///etc"})
