"""The Label Studio adapter's offline parts: labeling config, token kind, settings checks."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET

import pytest

from aidetect.errors import ConfigError
from aidetect.feedback import label_studio as review
from aidetect.feedback.config import ReviewConfig


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
