"""The shared real data sets ingest and validate; re-ingest gives the same id; CIFAKE's duplicates show."""

from __future__ import annotations

from pathlib import Path

import pytest

from aidetect.data.config import ValidationConfig
from aidetect.data.content import CIFAR10_CLASSES
from aidetect.data.validation import validate_version
from aidetect.data.validation_report import write_reports
from aidetect.data.versions import ingest, open_version

pytestmark = pytest.mark.shared_data


def test_hf_parquet_dev_set(shared_datasets: Path, tmp_path: Path) -> None:
    src = str(shared_datasets / "real-vs-ai-512-dev.parquet")
    root = str(tmp_path / "ds")
    first = ingest(src, root=root)
    again = ingest(src, root=root)
    assert first.created and not again.created and again.version_id == first.version_id
    v = open_version(first.version_id, root)
    assert v.manifest["label"].value_counts().to_dict() == {"REAL": 200, "FAKE": 200}
    assert set(v.manifest["origin"]) == {"coco", "imagenet", "diffusiondb"}
    assert (v.manifest["width"] == 512).all() and (v.manifest["format"] == "JPEG").all()
    result = validate_version(v, config=ValidationConfig(decode_check="all"))
    assert result.success, result.failure_message()
    assert result.decode["checked"] == 400 and result.decode["failed"] == 0


@pytest.mark.slow
def test_cifake_zip_duplicates_and_stable_id(shared_datasets: Path, tmp_path: Path) -> None:
    src = str(shared_datasets / "cifake-train.zip")
    root = str(tmp_path / "ds")
    first = ingest(src, root=root)
    assert first.created
    assert sum(sum(c.values()) for c in first.counts.values()) == 100_000
    v = open_version(first.version_id, root)
    assert set(v.manifest["content_class"]) == set(CIFAR10_CLASSES)
    assert v.manifest.groupby("sha256")["split"].nunique().max() == 1
    result = validate_version(v, config=ValidationConfig())
    assert result.success, result.failure_message()
    assert result.duplicates["pairs"] == 920 and result.duplicates["extra_copies"] == 920
    assert all(s.startswith("train/FAKE/") for g in result.duplicates["examples"] for s in g)
    assert [w["name"] for w in result.warnings] == ["no duplicate images"]
    md = Path(write_reports(result, str(tmp_path / "report"))["markdown"]).read_text()
    assert "920 pairs" in md
    again = ingest(src, root=root)
    assert not again.created and again.version_id == first.version_id
