"""The append-only label log (local store; the s3:// path goes through the same storage adapter)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from aidetect.errors import DataError
from aidetect.feedback.labels import LabelLog, LabelRecord

SHA_A = hashlib.sha256(b"a").hexdigest()
SHA_B = hashlib.sha256(b"b").hexdigest()


def test_appends_never_rewrite_and_read_back_in_time_order(tmp_path: Path) -> None:
    log = LabelLog(str(tmp_path / "labels"))
    first = log.append([LabelRecord(SHA_A, "FAKE", "review-page", author="ana", model_version="3")])
    before = Path(first).read_bytes()
    second = log.append(
        [LabelRecord(SHA_A, "REAL", "review-page", author="bo"), LabelRecord(SHA_B, "REAL", "csv")]
    )
    assert first != second and Path(first).read_bytes() == before
    assert Path(first).parent.name.startswith("date=")
    rows = log.read()
    assert [(r.sha256, r.label) for r in rows] == [(SHA_A, "FAKE"), (SHA_A, "REAL"), (SHA_B, "REAL")]
    assert log.latest()[SHA_A].author == "bo"
    assert json.loads(Path(first).read_text().splitlines()[0])["model_version"] == "3"


def test_default_root_is_under_aidetect_home() -> None:
    log = LabelLog()
    log.append([LabelRecord(SHA_B, "FAKE", "review-page")])
    assert [r.label for r in LabelLog().read()] == ["FAKE"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sha256": "abc"}, "sha256"),
        ({"label": " "}, "must not be empty"),
        ({"author": "x" * 500}, "at most"),
        ({"ts": "yesterday"}, "ISO 8601"),
    ],
)
def test_bad_records_are_refused_by_name(kwargs: dict[str, str], message: str) -> None:
    base = {"sha256": SHA_A, "label": "FAKE", "source": "review-page"}
    with pytest.raises(DataError, match=message):
        LabelRecord(**(base | kwargs))


def test_a_corrupt_line_names_its_file_and_line(tmp_path: Path) -> None:
    log = LabelLog(str(tmp_path))
    uri = log.append([LabelRecord(SHA_A, "FAKE", "csv")])
    Path(uri).write_text(Path(uri).read_text() + "{not json\n")
    with pytest.raises(DataError, match=r":2:"):
        log.read()
    with pytest.raises(DataError, match="nothing to append"):
        log.append([])
