"""The Great Expectations suite: each check can fail, severities and the duplicate policies hold."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from aidetect.cli import main
from aidetect.data.config import DataConfig, ValidationConfig
from aidetect.data.validation import validate_version
from aidetect.data.validation_report import write_reports
from aidetect.data.versions import DatasetVersion, ingest, open_version
from aidetect.errors import DataError
from tests.unit.test_data_versions import make_tree, png


def encode(arr: np.ndarray, mode: str, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").convert(mode).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture
def messy(tmp_path: Path) -> DatasetVersion:
    """A version with one problem of each kind that ingest lets through."""
    src = make_tree(tmp_path / "src", {"REAL": 30, "FAKE": 30})
    rng = np.random.default_rng(7)
    (src / "REAL" / "cmyk.jpg").write_bytes(
        encode(rng.integers(0, 255, (20, 20, 3), np.uint8), "CMYK", "JPEG")
    )
    (src / "REAL" / "tiny.png").write_bytes(png(500, size=8))
    good = png(501, size=64)
    (src / "FAKE" / "truncated.png").write_bytes(good[: len(good) - 200])  # header fine, pixels cut
    both = png(502)
    (src / "REAL" / "both.png").write_bytes(both)
    (src / "FAKE" / "both.png").write_bytes(both)
    (src / "FAKE" / "copy.png").write_bytes((src / "FAKE" / "img_000.png").read_bytes())
    root = str(tmp_path / "ds")
    res = ingest(str(src), root=root, config=DataConfig(verify_decode=False))
    return open_version(res.version_id, root)


def _by_name(result) -> dict[str, dict]:
    return {e["name"]: e for e in result.expectations}


def test_each_problem_is_found_with_examples(messy: DatasetVersion, tmp_path: Path) -> None:
    result = validate_version(messy, config=ValidationConfig())
    checks = _by_name(result)
    assert not result.success
    failed = {e["name"] for e in result.critical_failures}
    assert failed == {
        "decodable",
        "allowed modes",
        "width within bounds",
        "height within bounds",
        "no image with two labels",
    }
    assert checks["decodable"]["unexpected_count"] == 1
    assert checks["allowed modes"]["examples"][0]["source"] == "REAL/cmyk.jpg"
    assert {x["source"] for x in checks["no image with two labels"]["examples"]} == {
        "REAL/both.png",
        "FAKE/both.png",
    }
    assert checks["label set"]["success"] and checks["no image in two splits"]["success"]
    # byte-identical copies: 'both.png' (across labels) and 'copy.png'
    assert result.duplicates["groups"] == 2 and result.duplicates["extra_copies"] == 2
    assert [e["name"] for e in result.warnings] == ["no duplicate images"]
    assert result.decode["failed"] == 1 and result.decode["examples"][0]["source"] == "FAKE/truncated.png"
    with pytest.raises(DataError) as err:
        result.raise_for_critical()
    msg = str(err.value)
    assert "decodable" in msg and "no image with two labels" in msg and "FAKE/truncated.png" in msg
    written = write_reports(result, str(tmp_path / "report"))
    data = json.loads(Path(written["json"]).read_text())
    assert data["success"] is False and "allowed modes" in data["critical_failures"]
    md = Path(written["markdown"]).read_text()
    assert "**FAILED**" in md and "REAL/cmyk.jpg" in md and "2 groups of byte-identical images" in md


def test_duplicate_policies_and_balance_severity(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"REAL": 45, "FAKE": 5})
    (src / "REAL" / "dup.png").write_bytes((src / "REAL" / "img_003.png").read_bytes())
    root = str(tmp_path / "ds")
    vid = ingest(str(src), root=root).version_id

    warn = validate_version(vid, root, ValidationConfig())
    assert warn.success and {e["name"] for e in warn.warnings} == {
        "no duplicate images",
        "class balance FAKE",
        "class balance REAL",
    }
    strict = validate_version(vid, root, ValidationConfig(duplicates="fail", balance_severity="critical"))
    assert {e["name"] for e in strict.critical_failures} == {
        "no duplicate images",
        "class balance FAKE",
        "class balance REAL",
    }

    drop = validate_version(
        vid, root, ValidationConfig(duplicates="drop", min_class_share=0.0, max_class_share=1.0)
    )
    assert drop.success and drop.derived_version and drop.derived_version != vid
    assert drop.duplicates["dropped"] == 1 and drop.duplicates["parent"] == vid
    derived = open_version(drop.derived_version, root)
    assert len(derived.manifest) == 50
    assert derived.manifest["sha256"].is_unique and derived.meta["parent"] == vid
    # bytes still line up after re-sharding, and the parent is untouched
    import hashlib

    assert all(hashlib.sha256(b).hexdigest() == r["sha256"] for r, b in derived.iter_images())
    assert len(open_version(vid, root).manifest) == 51
    # deriving again gives the same id (content-addressed)
    again = validate_version(
        vid, root, ValidationConfig(duplicates="drop", min_class_share=0.0, max_class_share=1.0)
    )
    assert again.derived_version == drop.derived_version


def test_image_in_two_splits_is_critical(tmp_path: Path) -> None:
    root = str(tmp_path / "ds")
    v = open_version(
        ingest(str(make_tree(tmp_path / "src", {"REAL": 20, "FAKE": 20})), root=root).version_id, root
    )
    m = v.manifest.copy()
    # forge a leak: a second row for the first image in another split (ingest never produces this)
    leak = m.iloc[[0]].copy()
    leak["split"] = "test" if m.iloc[0]["split"] != "test" else "train"
    leak["source"] = "forged/leak.png"
    forged = DatasetVersion(v.uri, v.meta, pd.concat([m, leak], ignore_index=True))
    result = validate_version(forged, config=ValidationConfig())
    assert [e["name"] for e in result.critical_failures] == ["no image in two splits"]
    examples = {x["source"] for x in _by_name(result)["no image in two splits"]["examples"]}
    assert "forged/leak.png" in examples


def test_cli_validate_exit_codes(tmp_path: Path, messy: DatasetVersion) -> None:
    runner = CliRunner()
    root = messy.uri.rsplit("/", 1)[0]
    res = runner.invoke(
        main, ["data", "validate", messy.version_id[:8], "--root", root, "--out", str(tmp_path / "r")]
    )
    assert res.exit_code == 1
    assert "error: dataset version" in res.output and "failed validation: decodable" in res.output
    assert "Traceback" not in res.output
    assert (tmp_path / "r" / "validation.md").exists()
