"""Label files from a team's own tool: CSV and JSONL; a broken row fails the file; re-import adds nothing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from aidetect.cli import main
from aidetect.errors import DataError
from aidetect.feedback.capture import ImageStore
from aidetect.feedback.imports import import_labels
from aidetect.feedback.labels import LabelLog

LABELS = ["REAL", "FAKE"]


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(str(tmp_path / "captured"))


@pytest.fixture
def log(tmp_path: Path) -> LabelLog:
    return LabelLog(str(tmp_path / "labels"))


def kept(store: ImageStore, n: int) -> list[str]:
    return [store.put(f"image bytes {i}".encode()) for i in range(n)]


def test_csv_rows_by_sha256_land_in_the_log(tmp_path: Path, store: ImageStore, log: LabelLog) -> None:
    a, b = kept(store, 2)
    f = tmp_path / "labels.csv"
    f.write_text(f"sha256,label,author,model_version\n{a},fake,ann,3\n{b.upper()},REAL,bob,3\n")
    rep = import_labels(f, log, store=store, labels=LABELS)
    assert (rep.rows, rep.added, rep.already) == (2, 2, 0)
    got = {r.sha256: r for r in log.read()}
    assert got[a].label == "FAKE" and got[a].source == "import" and got[a].author == "ann"
    assert got[b].label == "REAL" and got[b].model_version == "3"  # upper-case hex is accepted
    assert rep.labels == {"FAKE": 1, "REAL": 1}


def test_reimporting_the_same_file_adds_nothing(tmp_path: Path, store: ImageStore, log: LabelLog) -> None:
    (a,) = kept(store, 1)
    f = tmp_path / "labels.jsonl"
    f.write_text(json.dumps({"sha256": a, "label": "FAKE", "source": "vendor"}) + "\n")
    assert import_labels(f, log, store=store, labels=LABELS).added == 1
    again = import_labels(f, log, store=store, labels=LABELS)
    assert (again.added, again.already, again.log_uri) == (0, 1, "")
    assert len(log.read()) == 1
    # the same image with another label (or by another person) is new information
    f.write_text(json.dumps({"sha256": a, "label": "REAL", "source": "vendor"}) + "\n")
    assert import_labels(f, log, store=store, labels=LABELS).added == 1


def test_image_paths_are_relative_to_the_file_and_go_into_the_store(
    tmp_path: Path, store: ImageStore, log: LabelLog
) -> None:
    (tmp_path / "batch" / "img").mkdir(parents=True)
    (tmp_path / "batch" / "img" / "x.png").write_bytes(b"\x89PNG fake but bytes")
    sha = hashlib.sha256(b"\x89PNG fake but bytes").hexdigest()
    f = tmp_path / "batch" / "labels.jsonl"
    f.write_text(json.dumps({"image": "img/x.png", "label": "ai", "ts": "2026-05-01T10:00:00Z"}) + "\n\n")
    rep = import_labels(f, log, store=store)  # configs/data.yaml's labels and synonyms: ai -> FAKE
    assert rep.images_stored == 1 and store.get(sha) == b"\x89PNG fake but bytes"
    (record,) = log.read()
    assert (record.sha256, record.label, record.ts) == (sha, "FAKE", "2026-05-01T10:00:00Z")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('sha256,label\n{a},FAKE\n{b},"REAL\n{a},FAKE\n', r"labels\.csv:3: broken CSV row"),
        ('sha256,label\n{a},FAKE\n{b},"RE"AL\n', r"labels\.csv:3: broken CSV row"),
        ("sha256,verdict\n{a},FAKE\n", "needs a 'label' column"),
        ("sha256,label\n{a},FAKE\n{b},MAYBE\n", r"labels\.csv:3: unknown class 'MAYBE' \(labels: REAL, FA"),
        ("sha256,label\n{a},FAKE\nnot-a-hash,REAL\n", r"labels\.csv:3: sha256 'not-a-hash' is not 64 hex"),
        ("image,label\nmissing.png,FAKE\n", r"labels\.csv:2: image file not found: missing.png"),
        ("sha256,label\n{a},FAKE\n{a},\n", r"labels\.csv:3: no label"),
        ("sha256,label\n{a},FAKE,extra\n", r"labels\.csv:2: more fields than the header"),
        ("sha256,label,ts\n{a},FAKE,yesterday\n", r"labels\.csv:2: label: ts 'yesterday'"),
        ("sha256,label\n{u},FAKE\n", r"labels\.csv:2: image e{12}… is not in the capture store"),
        ("sha256,label\n", "no label rows"),
    ],
)
def test_a_broken_row_fails_the_whole_file_and_writes_nothing(
    tmp_path: Path, store: ImageStore, log: LabelLog, body: str, message: str
) -> None:
    a, b = kept(store, 2)
    f = tmp_path / "labels.csv"
    f.write_text(body.format(a=a, b=b, u="e" * 64))
    with pytest.raises(DataError, match=message):
        import_labels(f, log, store=store, labels=LABELS)
    assert log.read() == []


def test_broken_jsonl_lines_are_named(tmp_path: Path, store: ImageStore, log: LabelLog) -> None:
    (a,) = kept(store, 1)
    f = tmp_path / "labels.jsonl"
    f.write_text(json.dumps({"sha256": a, "label": "FAKE"}) + "\n{not json\n")
    with pytest.raises(DataError, match=r"labels\.jsonl:2: not a JSON object"):
        import_labels(f, log, store=store, labels=LABELS)
    f.write_text('["a list"]\n')
    with pytest.raises(DataError, match=r"labels\.jsonl:1: not a JSON object"):
        import_labels(f, log, store=store, labels=LABELS)
    assert log.read() == []


def test_unknown_images_can_be_allowed(tmp_path: Path, store: ImageStore, log: LabelLog) -> None:
    f = tmp_path / "labels.csv"
    f.write_text(f"sha256,label\n{'e' * 64},FAKE\n")
    rep = import_labels(f, log, store=store, labels=LABELS, allow_unknown_images=True)
    assert (rep.added, rep.unknown_images) == (1, 1)
    assert "1 without a kept image" in rep.summary()


def test_a_contradicting_sha256_is_refused(tmp_path: Path, store: ImageStore, log: LabelLog) -> None:
    (tmp_path / "x.png").write_bytes(b"these bytes")
    f = tmp_path / "labels.csv"
    f.write_text(f"sha256,image,label\n{'e' * 64},x.png,FAKE\n")
    with pytest.raises(DataError, match=r"does not match the bytes of x\.png"):
        import_labels(f, log, store=store, labels=LABELS)
    assert not store.has(hashlib.sha256(b"these bytes").hexdigest())  # nothing half-written


def test_other_file_kinds_and_missing_files(tmp_path: Path, store: ImageStore, log: LabelLog) -> None:
    with pytest.raises(DataError, match=r"expected \.csv or \.jsonl"):
        import_labels(tmp_path / "labels.xlsx", log, store=store, labels=LABELS)
    with pytest.raises(DataError, match="no such label file"):
        import_labels(tmp_path / "absent.csv", log, store=store, labels=LABELS)


def test_the_cli_imports_and_names_the_broken_row(tmp_path: Path, store: ImageStore) -> None:
    (a,) = kept(store, 1)
    f = tmp_path / "labels.csv"
    args = ["feedback", "import", str(f), "--labels-root", str(tmp_path / "labels"), "--store", store.root]
    f.write_text(f'sha256,label\n{a},FAKE\n{a},"REAL\n')
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 1 and res.output.startswith("error: ")
    assert "labels.csv:3: broken CSV row" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "labels").exists()
    f.write_text(f"sha256,label,author\n{a},FAKE,ann\n")
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0 and "1 rows, 1 added (FAKE 1), 0 already in the log" in res.output
    assert "0 added (none), 1 already in the log" in CliRunner().invoke(main, args).output
