"""The Label Studio adapter's offline parts: labeling config, token kind, settings checks."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aidetect.errors import ConfigError
from aidetect.feedback import label_studio as review
from aidetect.feedback.config import ReviewConfig
from tests.helpers.quality import MODEL, row, sha, write_log


def jwt(claims: dict) -> str:
    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def test_the_labeling_config_offers_exactly_the_label_set() -> None:
    root = ET.fromstring(review.labeling_config(["REAL", 'FAKE "sd"', "A&B"]))
    choices = root.find("Choices")
    assert choices is not None and choices.get("name") == "label" and choices.get("toName") == "image"
    assert [c.get("value") for c in choices.iter("Choice")] == ["REAL", 'FAKE "sd"', "A&B"]
    assert root.find("Image").get("value") == "$image"  # type: ignore[union-attr]


def test_personal_access_tokens_are_told_from_legacy_tokens() -> None:
    assert review._jwt_type(jwt({"token_type": "refresh", "exp": 2**33})) == "refresh"
    assert review._jwt_type(jwt({"token_type": "access"})) == "access"
    assert review._jwt_type("0123456789abcdef0123456789abcdef01234567") is None  # a legacy token
    assert review._jwt_type("a.b.c") is None  # three parts, but no JSON inside


def test_settings_and_token_are_checked_before_any_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIDETECT_LABEL_STUDIO_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="AIDETECT_LABEL_STUDIO_TOKEN"):
        review.client_from_config(ReviewConfig())
    with pytest.raises(ConfigError, match=r"review\.url"):
        review.client_from_config(ReviewConfig(url="ftp://x"))
    with pytest.raises(ConfigError, match="sha256"):
        ReviewConfig(image_url="https://img.example/x.png").validate()
    with pytest.raises(ConfigError, match="max_tasks"):
        ReviewConfig(max_tasks=0).validate()


def test_kept_rows_are_the_newest_row_per_kept_image_in_drifts_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC) - timedelta(minutes=1)
    rows = [
        row(1, 0.9, "3", "stable", now - timedelta(minutes=5)),
        row(1, 0.7, "4", "stable", now),  # the same image served again: the newest row counts
        row(2, 0.2, "3", "stable", now),
        {**row(3, 0.6, "3", "stable", now), "kept": False},
        row(4, 0.6, "3", "stable", now, image=""),  # a tensor input: nothing was kept
        row(5, 0.6, "3", "stable", now - timedelta(days=9)),  # outside review.since
    ]
    write_log(tmp_path / "log", rows)
    monkeypatch.setenv("AIDETECT_DRIFT__LOG_URI", str(tmp_path / "log"))  # review.log_uri "": drift's
    got = review.kept_rows(ReviewConfig(), MODEL)
    assert sorted(got["sha256"]) == sorted([sha(1), sha(2)])
    assert got.set_index("sha256").loc[sha(1), "model_version"] == "4"
    v3 = review.kept_rows(ReviewConfig(), MODEL, model_version="3").set_index("sha256")
    assert sorted(v3.index) == sorted([sha(1), sha(2)]) and v3.loc[sha(1), "probability_fake"] == 0.9
