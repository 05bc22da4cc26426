"""The one model-reference parser."""

from __future__ import annotations

import pytest

from aidetect.errors import DataError
from aidetect.refs import ModelRef


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("models:/det@candidate", ModelRef("det", "candidate")),
        ("models:/det/3", ModelRef("det", "3")),
        ("other/12", ModelRef("other", "12")),
        ("other@canary", ModelRef("other", "canary")),
        ("3", ModelRef("default", "3")),
        ("@production", ModelRef("default", "production")),
        ("production", ModelRef("default", "production")),
    ],
)
def test_every_accepted_form(text: str, expected: ModelRef) -> None:
    assert ModelRef.parse(text, "default") == expected


def test_uri_round_trips() -> None:
    for ref in (ModelRef("det", "7"), ModelRef("det", "staging")):
        assert ModelRef.parse(ref.uri) == ref
    assert ModelRef("det", "7").uri == "models:/det/7" and ModelRef("det", "a").uri == "models:/det@a"


@pytest.mark.parametrize("text", ["", " ", "models:/", "models:/det", "models:/det/", "3", "a/../b", "x@"])
def test_malformed_references_name_the_accepted_forms(text: str) -> None:
    with pytest.raises(DataError, match="bad model reference"):
        ModelRef.parse(text)  # no default name: a bare version has no model
