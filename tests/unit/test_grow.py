"""Datasets that grow: base ∪ labelled kept images, no split leak across versions, provenance, refusals."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from aidetect import flows, storage
from aidetect.data.versions import ingest, list_versions, open_version
from aidetect.errors import DataError
from aidetect.feedback.config import FeedbackConfig, GrowConfig
from aidetect.feedback.labels import LabelLog, LabelRecord


def png(seed: int, size: int = 24) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, format="PNG")
    return buf.getvalue()


def keep(store: Path, data: bytes) -> str:
    """Put ``data`` into the capture store layout of the contract: ``<store>/<sha[:2]>/<sha>``."""
    sha = hashlib.sha256(data).hexdigest()
    storage.write_bytes(str(store / sha[:2] / sha), data)
    return sha


@pytest.fixture
def base(tmp_path: Path) -> flows.DatasetRef:
    for label, offset in (("REAL", 0), ("FAKE", 1000)):
        d = tmp_path / "src" / label
        d.mkdir(parents=True)
        for i in range(30):
            (d / f"{i}.png").write_bytes(png(offset + i, 16))
    res = ingest(str(tmp_path / "src"), root=str(tmp_path / "ds"))
    return flows.DatasetRef(res.version_id, res.uri, str(tmp_path / "ds"))


def label_batch(tmp_path: Path, seeds: range, source: str = "label-studio") -> list[str]:
    """Keep one 512-px-style (larger than the base) image per seed and label it (even: REAL)."""
    shas = []
    records = []
    for s in seeds:
        sha = keep(tmp_path / "store", png(5000 + s, 64))
        shas.append(sha)
        records.append(LabelRecord(sha, "REAL" if s % 2 == 0 else "FAKE", source))
    LabelLog(str(tmp_path / "labels")).append(records)
    return shas


def cfg(min_rows: int = 5) -> FeedbackConfig:
    return FeedbackConfig(grow=GrowConfig(min_feedback_rows=min_rows))


def do_grow(tmp_path: Path, base: flows.DatasetRef, min_rows: int = 5) -> flows.data.Grown:
    stores = flows.Stores(datasets_root=base.root)
    return flows.grow(
        base, stores, cfg=cfg(min_rows), labels_root=str(tmp_path / "labels"), store=str(tmp_path / "store")
    )


def test_two_successive_grows_never_leak_across_splits(tmp_path: Path, base: flows.DatasetRef) -> None:
    first_shas = label_batch(tmp_path, range(40))
    first = do_grow(tmp_path, base)
    assert first.report.created and first.report.num_added == 40
    v1 = first.dataset.open()
    b = base.open()
    assert len(v1.manifest) == len(b.manifest) + 40
    # the base rows are unchanged (split, label) and marked as such
    merged = b.manifest.merge(v1.manifest, on=["sha256", "source"], suffixes=("", "_g"))
    assert len(merged) == len(b.manifest)
    assert (merged["split"] == merged["split_g"]).all() and (merged["label"] == merged["label_g"]).all()
    assert set(merged["provenance"]) == {"base"}
    fb = v1.manifest[v1.manifest["provenance"] == "feedback"]
    assert sorted(fb["sha256"]) == sorted(first_shas)
    assert set(fb["label_source"]) == {"label-studio"}
    assert set(fb["feedback_batch"]) == {first.report.feedback_batch}
    assert set(fb["split"]) == {"train", "val", "test"}  # 40 images spread by hash
    assert (fb["width"] == 64).all()  # larger than the base's images: fine, preprocessing resizes
    # bytes round-trip
    by_sha = {r["sha256"]: d for r, d in v1.iter_images()}
    assert all(hashlib.sha256(by_sha[s]).hexdigest() == s for s in first_shas)

    # second batch: grow the grown version; the first batch keeps its split, provenance and batch
    label_batch(tmp_path, range(40, 70), source="import")
    second = do_grow(tmp_path, first.dataset)
    assert second.report.num_added == 30 and second.report.already_in_base == 40
    v2 = second.dataset.open()
    assert v2.meta["parent"] == v1.version_id
    again = v1.manifest.merge(v2.manifest, on="sha256", suffixes=("", "_2"))
    assert len(again) == len(v1.manifest)
    for col in ("split", "label", "provenance", "label_source", "feedback_batch"):
        assert (again[col] == again[f"{col}_2"]).all(), col
    assert set(v2.manifest["feedback_batch"]) - {""} == {
        first.report.feedback_batch,
        second.report.feedback_batch,
    }
    # no image in two splits of ANY version: the same sha has the same split in every version
    seen: dict[str, str] = {}
    for v in (b, v1, v2):
        assert v.manifest["sha256"].is_unique
        for sha, split in zip(v.manifest["sha256"], v.manifest["split"], strict=True):
            assert seen.setdefault(sha, split) == split
    # the same labels grown again: the same content id, nothing written
    again_grown = do_grow(tmp_path, first.dataset)
    assert again_grown.dataset.version_id == v2.version_id and not again_grown.report.created


def test_conflicts_with_the_base_are_reported_and_the_base_wins(
    tmp_path: Path, base: flows.DatasetRef
) -> None:
    label_batch(tmp_path, range(10))
    b = base.open()
    row = b.manifest.iloc[0]
    other = "FAKE" if row["label"] == "REAL" else "REAL"
    LabelLog(str(tmp_path / "labels")).append([LabelRecord(row["sha256"], other, "review-page")])
    grown = do_grow(tmp_path, base)
    (conflict,) = [c for c in grown.report.conflicts if c["kind"] == "base"]
    assert conflict["sha256"] == row["sha256"] and conflict["kept"] == row["label"]
    v = grown.dataset.open()
    assert v.manifest.loc[v.manifest["sha256"] == row["sha256"], "label"].item() == row["label"]
    assert v.meta["feedback"]["conflicts"][0]["sha256"] == row["sha256"]


def test_unknown_images_and_classes_are_skipped_and_reported(tmp_path: Path, base: flows.DatasetRef) -> None:
    label_batch(tmp_path, range(10))
    missing = hashlib.sha256(b"never kept").hexdigest()
    odd = keep(tmp_path / "store", png(9999, 32))
    LabelLog(str(tmp_path / "labels")).append(
        [LabelRecord(missing, "FAKE", "import"), LabelRecord(odd, "DEEPFAKE", "import")]
    )
    grown = do_grow(tmp_path, base)
    reasons = {s["sha256"]: s["reason"] for s in grown.report.skipped}
    assert "not in the capture store" in reasons[missing]
    assert "unknown class 'DEEPFAKE'" in reasons[odd]
    assert grown.report.num_added == 10


def test_too_few_feedback_rows_is_refused_and_nothing_is_written(
    tmp_path: Path, base: flows.DatasetRef
) -> None:
    label_batch(tmp_path, range(4))
    before = {m["version_id"] for m in list_versions(base.root)}
    with pytest.raises(
        DataError, match=r"only 4 new labelled images .*min_feedback_rows = 5.*nothing written"
    ):
        do_grow(tmp_path, base)
    assert {m["version_id"] for m in list_versions(base.root)} == before
    assert sorted(p.name for p in Path(base.root).iterdir()) == sorted(before)  # no staging left behind


def test_cli_grow_prints_the_report_and_validates(tmp_path: Path, base: flows.DatasetRef) -> None:
    from aidetect.cli import main

    label_batch(tmp_path, range(30))
    args = ["data", "grow", base.version_id, "--root", base.root, "--labels", str(tmp_path / "labels")]
    args += ["--store", str(tmp_path / "store"), "--min-feedback-rows", "20"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "added 30 labelled images" in res.output and "validation passed" in res.output
    new_id = res.output.split()[2]
    v = open_version(new_id, base.root)
    assert (v.manifest["provenance"] == "feedback").sum() == 30
    # refused: a clear one-line error, exit non-zero, no traceback
    res = CliRunner().invoke(main, [*args[:-1], "500"])
    assert res.exit_code != 0 and "error:" in res.output and "Traceback" not in res.output


def test_validation_flags_a_version_made_mostly_of_feedback(tmp_path: Path, base: flows.DatasetRef) -> None:
    from aidetect.data.config import ValidationConfig
    from aidetect.data.validation import validate_version

    label_batch(tmp_path, range(40))
    grown = do_grow(tmp_path, base)
    share = 40 / 100
    ok = validate_version(grown.dataset.version_id, base.root, ValidationConfig(feedback_share_warn=0.5))
    assert ok.success and not [
        e for e in ok.expectations if "feedback share" in e["name"] and not e["success"]
    ]
    strict = ValidationConfig(feedback_share_warn=0.2, feedback_share_critical=0.3)
    res = validate_version(grown.dataset.version_id, base.root, strict)
    failed = {e["name"]: e["severity"] for e in res.expectations if not e["success"]}
    assert failed == {"feedback share <= 0.2": "warning", "feedback share <= 0.3": "critical"}
    assert not res.success and share == 0.4


def _verdict(base: flows.DatasetRef) -> dict:
    return {"model_name": "detector", "model_version": "3", "dataset_version": base.version_id,
            "reasons": ["degradation: live F1 0.70 < 0.9 over 60 labels"], "verdict_uri": ""}  # fmt: skip


def test_retrain_grows_the_newest_version_first_and_warm_starts(
    tmp_path: Path, base: flows.DatasetRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aidetect.flows import monitoring
    from tests.helpers.kfp_api import fake_kfp_api

    monkeypatch.setenv("AIDETECT_FEEDBACK__LABELS__ROOT", str(tmp_path / "labels"))
    monkeypatch.setenv("AIDETECT_FEEDBACK__CAPTURE__STORE_URI", str(tmp_path / "store"))
    monkeypatch.setenv("AIDETECT_FEEDBACK__GROW__MIN_FEEDBACK_ROWS", "5")
    label_batch(tmp_path, range(20))
    first = do_grow(tmp_path, base)  # an earlier grow: the newest version of the served model's line
    label_batch(tmp_path, range(20, 30))
    with fake_kfp_api() as api:
        args = {"preset": "tiny", "datasets_root": base.root}
        out = monitoring.trigger_retrain(_verdict(base), "detector", api.url, "", args)
        (run,) = api.received("POST", "/apis/v2beta1/runs")
    assert out["action"] == "launched", out
    grown = out["grown"]
    assert grown["parent"] == first.dataset.version_id and grown["num_added"] == 10
    params = run.body["runtime_config"]["parameters"]
    assert params["data_uri"] == grown["uri"] and params["init_from"] == "models:/detector/3"
    assert open_version(grown["version_id"], base.root).meta["parent"] == first.dataset.version_id


def test_retrain_with_too_little_to_grow_launches_nothing(
    tmp_path: Path, base: flows.DatasetRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aidetect.flows import monitoring
    from aidetect.monitoring.config import load_drift_config
    from aidetect.monitoring.retrain import state_uri
    from tests.helpers.kfp_api import fake_kfp_api

    monkeypatch.setenv("AIDETECT_FEEDBACK__LABELS__ROOT", str(tmp_path / "labels"))
    monkeypatch.setenv("AIDETECT_FEEDBACK__CAPTURE__STORE_URI", str(tmp_path / "store"))
    label_batch(tmp_path, range(3))  # min_feedback_rows is 20 in configs/feedback.yaml
    before = sorted(p.name for p in Path(base.root).iterdir())
    with fake_kfp_api() as api:
        args = {"datasets_root": base.root}
        out = monitoring.trigger_retrain(_verdict(base), "detector", api.url, "s3://b/data", args)
        assert api.received("POST", "/apis/v2beta1/runs") == []
    assert out["action"] == "skipped" and "only 3 new labelled images" in out["reason"]
    assert sorted(p.name for p in Path(base.root).iterdir()) == before
    assert not Path(state_uri(load_drift_config().retrain)).exists()  # no cooldown held, nothing recorded
