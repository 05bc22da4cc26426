"""Live quality with everything in an S3-compatible store (a real moto_server): inference log, label
log, bundle, verdicts and Evidently reports; an unreachable store is one clear error, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from aidetect import storage
from aidetect.errors import AidetectError
from aidetect.feedback import quality
from aidetect.feedback.config import FeedbackConfig
from aidetect.feedback.labels import LabelLog
from tests.helpers.quality import MODEL, NOW, build, bundle_json


def _cfg(labels: str, reports: str) -> FeedbackConfig:
    cfg = FeedbackConfig()
    cfg.labels.root, cfg.quality.reports_uri = labels, reports
    cfg.quality.min_labels, cfg.quality.min_f1 = 50, 0.9
    return cfg


def test_quality_check_reads_and_writes_s3(s3_env: str, tmp_path: Path) -> None:
    storage.s3_client().create_bucket(Bucket="loop")
    s = build(tmp_path)
    for path in s.log_root.rglob("*.parquet"):
        storage.write_bytes(f"s3://loop/log/{path.relative_to(s.log_root)}", path.read_bytes())
    LabelLog("s3://loop/labels").append(LabelLog(str(s.labels_root)).read())
    bundle = bundle_json(tmp_path / "bundle")
    storage.write_bytes("s3://loop/bundle/bundle.json", (bundle / "bundle.json").read_bytes())
    cfg = _cfg("s3://loop/labels", "s3://loop/quality")
    verdict = quality.run_check(
        MODEL, "3", cfg, log_uri="s3://loop/log", bundles=quality.bundle_at("s3://loop/bundle"), now=NOW
    )
    assert verdict["status"] == "degraded" and verdict["verdict_uri"].startswith(
        "s3://loop/quality/detector/"
    )
    assert b"<html" in storage.read_bytes(verdict["reports"]["stable"]).lower()
    latest = quality.read_latest(cfg.quality, MODEL, "3")
    assert latest is not None and latest["verdict_uri"] == verdict["verdict_uri"]


def test_an_unreachable_store_is_one_error_and_nothing_is_written(
    s3_unreachable: str, tmp_path: Path
) -> None:
    cfg = _cfg("s3://loop/labels", str(tmp_path / "quality"))
    bundles = quality.bundle_at(str(bundle_json(tmp_path / "b")))
    with pytest.raises(AidetectError) as err:
        quality.run_check(MODEL, "3", cfg, log_uri="s3://loop/log", bundles=bundles, now=NOW)
    assert "S3 endpoint unreachable" in str(err.value)
    assert not (tmp_path / "quality").exists() and not quality.textfile_path().exists()
