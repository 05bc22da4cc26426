"""Labels for a text model (issue 19): rows name the text itself; the label log keys it by the sha256 of
the normalised text (what a text model's inference log records), with the text label set."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
from click.testing import CliRunner

from aidetect.cli import main
from aidetect.data.text.normalize import normalize_text, text_sha256
from aidetect.errors import DataError
from aidetect.feedback.capture import ImageStore
from aidetect.feedback.imports import import_labels
from aidetect.feedback.labels import LabelLog

HUMAN = "my aunt fixed the fence, the cat sold some bread"
AI = "Certainly! In conclusion, this seamlessly moment matters."


@pytest.fixture
def log(tmp_path: Path) -> LabelLog:
    return LabelLog(str(tmp_path / "labels"))


def test_text_rows_are_keyed_by_the_normalised_text(tmp_path: Path, log: LabelLog) -> None:
    store = ImageStore(str(tmp_path / "captured"))
    f = tmp_path / "texts.csv"
    decomposed = unicodedata.normalize("NFD", "Café crème, déjà vu")  # what some clients send
    f.write_text(
        "text,label,author\n"
        f'"{HUMAN}\r\n",human,ann\n'
        f'"  {AI}",AI-generated,ann\n'
        f'"{decomposed}",real,bob\n'
        '"Café crème, déjà vu",real,bob\n'  # the same text composed: the same key, already there
    )
    rep = import_labels(f, log, store=store)
    assert (rep.rows, rep.added, rep.already, rep.images_stored) == (4, 3, 1, 0)
    assert rep.labels == {"human": 2, "ai": 1}
    records = {r.sha256: r for r in log.read()}
    assert set(records) == {text_sha256(normalize_text(t)) for t in (HUMAN, AI, "Café crème, déjà vu")}
    assert records[text_sha256(HUMAN)].label == "human" and records[text_sha256(AI)].label == "ai"
    assert not (tmp_path / "captured").exists() or not any((tmp_path / "captured").rglob("*"))
    again = import_labels(f, log, store=store)
    assert (again.added, again.already) == (0, 4)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"text": AI, "label": "FAKE?"}, "unknown class 'FAKE?' (labels: human, ai)"),
        ({"text": "nul \x00 here", "label": "ai"}, "unusable text (control character"),
        ({"text": AI, "label": "ai", "sha256": "a" * 64}, "sha256 does not match the normalised text"),
        ({"text": "   ", "label": "ai"}, "neither sha256, image nor text given"),
    ],
)
def test_a_bad_text_row_fails_the_file_naming_its_line(
    tmp_path: Path, log: LabelLog, row: dict, message: str
) -> None:
    f = tmp_path / "texts.jsonl"
    good = json.dumps({"text": HUMAN, "label": "human"})
    f.write_text(f"{good}\n{json.dumps(row)}\n")
    with pytest.raises(DataError) as err:
        import_labels(f, log, store=ImageStore(str(tmp_path / "captured")))
    assert f"{f}:2: " in str(err.value) and message in str(err.value), str(err.value)
    assert log.read() == []  # nothing written


def test_cli_imports_a_text_label_file(tmp_path: Path) -> None:
    f = tmp_path / "texts.csv"
    f.write_text(f'text,label\n"{AI}",ai\n')
    labels = tmp_path / "labels"
    result = CliRunner().invoke(main, ["feedback", "import", str(f), "--labels-root", str(labels)])
    assert result.exit_code == 0, result.output
    assert "1 rows, 1 added (ai 1)" in result.output
    assert [r.sha256 for r in LabelLog(str(labels)).read()] == [text_sha256(AI)]
