"""Text datasets: reading CSV/JSONL/parquet, normalisation, content-addressed versions, group splits,
and the bad inputs of issue 19 (each a clear error naming the row, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from aidetect.data.text.demo import generate_text_demo
from aidetect.data.text.normalize import TextError, clean_text, clean_texts, normalize_text, text_sha256
from aidetect.data.text.settings import TextDataConfig
from aidetect.data.text.validation import TextValidationConfig, validate_text_version
from aidetect.data.text.versions import ingest_text, open_text_version, read_texts
from aidetect.data.versions import list_versions
from aidetect.errors import DataError


def _cfg(**kw: object) -> TextDataConfig:
    cfg = TextDataConfig(**kw)  # type: ignore[arg-type]
    cfg.validate()
    return cfg


def _write_csv(path: Path, rows: list[list[str]], header: str = "text,label") -> Path:
    lines = [header] + [",".join(f'"{c}"' for c in r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_normalisation_is_nfc_newlines_and_strip() -> None:
    decomposed = "Cafe\u0301\r\nline two\rthree  "
    assert normalize_text(decomposed) == "Café\nline two\nthree"
    assert text_sha256(normalize_text(decomposed)) == text_sha256("Café\nline two\nthree")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("   \n ", "empty"),
        ("x" * 200, "too_long"),
        (b"ok \xff\xfe bad", "encoding"),
        ("nul\x00inside", "control"),
        ("bell\x07", "control"),
    ],
)
def test_clean_text_refuses_with_a_reason(raw: str | bytes, reason: str) -> None:
    with pytest.raises(TextError) as err:
        clean_text(raw, max_bytes=100)
    assert err.value.reason == reason


def test_clean_text_keeps_tabs_newlines_and_windows_punctuation() -> None:
    assert clean_text("a\tb\nc \x97 d", max_bytes=100) == "a\tb\nc \x97 d"


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_ingest_each_format_gives_the_same_version(tmp_path: Path, suffix: str) -> None:
    src = generate_text_demo(tmp_path / f"demo{suffix}", n_groups=30)
    first = ingest_text(str(src), root=str(tmp_path / "ds"), config=_cfg())
    assert first.created
    again = ingest_text(
        str(generate_text_demo(tmp_path / "other.parquet", n_groups=30)),
        root=str(tmp_path / "ds"),
        config=_cfg(),
    )
    assert again.version_id == first.version_id and not again.created
    version = open_text_version(first.version_id, str(tmp_path / "ds"))
    assert version.meta["modality"] == "text" and version.meta["real_label"] == "human"
    assert version.meta["split_by"] == "group"
    assert version.labels == ["human", "ai"]
    rows = version.rows()
    assert len(rows) == 90 and set(rows["generator"]) == {"human", "gen-a", "gen-b"}
    # rewrites of one original never straddle splits
    assert rows.groupby("group")["split"].nunique().max() == 1
    texts = read_texts(version, "train")
    assert [text_sha256(t) for t in texts] == version.rows("train")["sha256"].tolist()
    assert list_versions(str(tmp_path / "ds"))[0]["modality"] == "text"


def test_without_groups_the_split_follows_the_text_hash(tmp_path: Path) -> None:
    rows = [[f"text number {i} is here", "ai" if i % 2 else "human"] for i in range(40)]
    src = _write_csv(tmp_path / "plain.csv", rows)
    result = ingest_text(str(src), root=str(tmp_path / "ds"), config=_cfg())
    version = open_text_version(result.version_id, str(tmp_path / "ds"))
    assert version.meta["split_by"] == "hash" and set(version.rows()["split"]) <= {"train", "val", "test"}


def test_label_synonyms_and_integer_labels(tmp_path: Path) -> None:
    src = tmp_path / "ints.jsonl"
    src.write_text("".join(json.dumps({"text": f"t {i}", "label": i % 2}) + "\n" for i in range(10)))
    result = ingest_text(str(src), root=str(tmp_path / "ds"), config=_cfg())
    assert sum(c["ai"] for c in result.counts.values()) == 5


def _assert_nothing_written(root: Path) -> None:
    assert not root.exists() or not list(root.iterdir())


def test_missing_label_column_names_the_column(tmp_path: Path) -> None:
    src = _write_csv(tmp_path / "nolabel.csv", [["hello", "x"]], header="text,kind")
    with pytest.raises(DataError, match=r"no label column 'label' \(columns: text, kind\)"):
        ingest_text(str(src), root=str(tmp_path / "ds"), config=_cfg())
    _assert_nothing_written(tmp_path / "ds")


def test_csv_with_a_broken_quote_names_the_place(tmp_path: Path) -> None:
    src = tmp_path / "broken.csv"
    src.write_text('text,label\n"fine",human\n"never closed,ai\n"more",human\n')
    with pytest.raises(DataError, match=r"CSV broken near line \d+ .*unbalanced double quote"):
        ingest_text(str(src), root=str(tmp_path / "ds"), config=_cfg())
    _assert_nothing_written(tmp_path / "ds")


def test_csv_row_with_extra_fields_names_the_row(tmp_path: Path) -> None:
    src = tmp_path / "extra.csv"
    src.write_text('text,label\n"a",human\nb,x,ai\n')
    with pytest.raises(DataError, match=r"row 2 \(line 3\) has 3 fields"):
        ingest_text(str(src), root=str(tmp_path / "ds"), config=_cfg())


def test_bad_texts_beyond_the_allowed_share_fail_naming_rows(tmp_path: Path) -> None:
    src = tmp_path / "bad.csv"
    good = b"".join(f'"fine text {i}",human\n'.encode() for i in range(6))
    bad = b'"",ai\n"ctrl \x01 here",ai\n"bad \xff utf8",human\n"' + b"x" * 10_000_000 + b'",ai\n'
    src.write_bytes(b"text,label\n" + good + bad)
    with pytest.raises(DataError) as err:
        ingest_text(str(src), root=str(tmp_path / "ds"), config=_cfg())
    msg = str(err.value)
    assert "4 of 10 texts" in msg
    assert "row 7: empty" in msg and "row 8: control" in msg and "row 9: encoding" in msg
    _assert_nothing_written(tmp_path / "ds")


def test_a_few_bad_texts_are_skipped_and_listed(tmp_path: Path) -> None:
    rows = [[f"fine text {i}", "human" if i % 2 else "ai"] for i in range(20)] + [["", "ai"]]
    src = _write_csv(tmp_path / "few.csv", rows)
    result = ingest_text(str(src), root=str(tmp_path / "ds"), config=_cfg(max_skip_fraction=0.1))
    assert result.skipped == [{"source": "row 21", "reason": "empty: text is empty"}]
    assert open_text_version(result.version_id, str(tmp_path / "ds")).meta["num_skipped"] == 1


def test_unknown_or_missing_label_names_the_row(tmp_path: Path) -> None:
    src = _write_csv(tmp_path / "unk.csv", [["a", "human"], ["b", "robot"]])
    with pytest.raises(DataError, match=r"unknown class 'robot' in .*row 2"):
        ingest_text(str(src), root=str(tmp_path / "ds"), config=_cfg())
    src = tmp_path / "nolab.jsonl"
    src.write_text('{"text": "a", "label": "ai"}\n{"text": "b", "label": null}\n')
    with pytest.raises(DataError, match="line 2 has no label"):
        ingest_text(str(src), root=str(tmp_path / "ds"), config=_cfg())


def test_jsonl_line_that_is_not_json_names_the_line(tmp_path: Path) -> None:
    src = tmp_path / "x.jsonl"
    src.write_text('{"text": "a", "label": "ai"}\n{"text": "b", "label"\n')
    with pytest.raises(DataError, match="line 2 is not valid JSON"):
        ingest_text(str(src), root=str(tmp_path / "ds"), config=_cfg())


def test_validation_finds_conflicts_straddling_groups_and_near_duplicates(tmp_path: Path) -> None:
    base = "the quick brown fox jumps over the lazy dog near the river bank today"
    rows = [
        {"text": f"sample text {i} about things", "label": "ai" if i % 3 else "human", "group": f"g{i}"}
        for i in range(30)
    ]
    rows += [
        {"text": base, "label": "human", "group": "dup-a"},
        {"text": base, "label": "ai", "group": "dup-b"},  # one text, two labels
        {"text": base + " again", "label": "ai", "group": "near"},
    ]
    src = tmp_path / "v.parquet"
    pd.DataFrame(rows).to_parquet(src)
    result = ingest_text(str(src), root=str(tmp_path / "ds"), config=_cfg(max_skip_fraction=0.0))
    report = validate_text_version(result.version_id, str(tmp_path / "ds"), TextValidationConfig(min_chars=5))
    failed = {e["name"] for e in report.expectations if not e["success"]}
    assert "no text with two labels" in failed and "no duplicate texts" in failed
    assert "no near-duplicates" in failed
    assert not report.success and "no text with two labels" in report.failure_message()
    assert report.duplicates["near"]["pairs"] >= 1


def test_clean_texts_names_the_element() -> None:
    assert clean_texts([b"ok", "fine"], max_bytes=10) == ["ok", "fine"]
    with pytest.raises(TextError, match=r"text\[1\]: not valid UTF-8 \(byte 2"):
        clean_texts([b"ok", b"no\xc3(", b""], max_bytes=10)
