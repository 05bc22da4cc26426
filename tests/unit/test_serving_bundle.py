"""Bundle format: write/read locally and from S3, clear errors, serving config validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aidetect.errors import ConfigError, DataError, StorageError
from aidetect.serving.bundle import BundleSpec, load_bundle, write_bundle


def _spec(**kw) -> BundleSpec:
    base = dict(model_name="m", model_version="1", labels=["REAL", "FAKE"], positive_label="FAKE",
                input_size=32, mean=[0.5] * 3, std=[0.2] * 3, threshold=0.4)  # fmt: skip
    return BundleSpec(**{**base, **kw})


def test_roundtrip_local(tmp_path: Path) -> None:
    write_bundle(tmp_path / "b", b"onnx-bytes", _spec(extra={"optimize": {"chosen": "int8"}}))
    b = load_bundle(tmp_path / "b")
    assert b.spec.threshold == 0.4 and b.spec.real_label == "REAL"  # filled in from positive_label
    assert b.spec.decision.fake_label == "FAKE" and b.spec.decision.threshold == 0.4
    assert b.onnx_path.read_bytes() == b"onnx-bytes" and b.spec.extra["optimize"]["chosen"] == "int8"
    assert load_bundle(tmp_path / "b" / "bundle.json").root == b.root
    with pytest.raises(StorageError, match="refusing to overwrite"):
        write_bundle(tmp_path / "b", b"x", _spec())


def test_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="bundle not found"):
        load_bundle(tmp_path / "nope")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "bundle.json").write_text(_spec().to_json())
    with pytest.raises(StorageError, match=r"need bundle\.json and model\.onnx"):
        load_bundle(tmp_path / "half")
    (tmp_path / "half" / "model.onnx").write_bytes(b"x")
    doc = json.loads(_spec().to_json())
    del doc["labels"]
    (tmp_path / "half" / "bundle.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"missing field.*labels"):
        load_bundle(tmp_path / "half")
    with pytest.raises(DataError, match="positive_label"):
        write_bundle(tmp_path / "c", b"x", _spec(positive_label="DOG"))
    with pytest.raises(DataError, match="models:/<name>@<alias>"):
        load_bundle("models:/just-a-name")


def test_roundtrip_s3(s3_env: str, tmp_path: Path) -> None:
    from aidetect import storage

    storage.s3_client().create_bucket(Bucket="bundles")
    write_bundle("s3://bundles/m/1", b"onnx", _spec())
    b = load_bundle("s3://bundles/m/1")
    assert b.onnx_path.read_bytes() == b"onnx" and b.spec.model_name == "m"
    with pytest.raises(StorageError, match=r"no bundle\.json under"):
        load_bundle("s3://bundles/m/2")


def test_serving_config_validation() -> None:
    from aidetect.serving.config import load_serving_config

    cfg = load_serving_config(overrides={"http_port": 9000, "grpc_port": 9001})
    assert cfg.max_batch == 64 and not cfg.auth_required and cfg.rate_limit_per_second == 0
    with pytest.raises(ConfigError, match="grpc_port"):
        load_serving_config(overrides={"http_port": 9000, "grpc_port": 9000})
    with pytest.raises(ConfigError, match="max_batch"):
        load_serving_config(overrides={"max_batch": 0})


def test_decision_spec_from_old_and_new_bundles(tmp_path: Path) -> None:
    # an old binary bundle whose fake class comes first: positive_label decides which label is real
    old = _spec(labels=["FAKE", "REAL"], positive_label="FAKE", threshold=0.7)
    write_bundle(tmp_path / "old", b"x", old)
    doc = json.loads((tmp_path / "old" / "bundle.json").read_text())
    assert doc["real_label"] == "REAL"  # written out from now on
    del doc["real_label"]
    (tmp_path / "old" / "bundle.json").write_text(json.dumps(doc))
    rule = load_bundle(tmp_path / "old").spec.decision
    assert (rule.real_label, rule.fake_label, rule.threshold) == ("REAL", "FAKE", 0.7)
    # three classes, the real one not first
    three = _spec(labels=["ai-generated", "real", "deepfake"], positive_label=None, real_label="real")
    write_bundle(tmp_path / "three", b"x", three)
    rule = load_bundle(tmp_path / "three").spec.decision
    assert rule.real_index == 1 and rule.fake_labels == ["ai-generated", "deepfake"] and not rule.binary
    with pytest.raises(DataError, match=r"bundle\.json: .*real_label 'human'"):
        write_bundle(tmp_path / "bad", b"x", _spec(real_label="human"))
    with pytest.raises(DataError, match="also the real_label"):
        write_bundle(tmp_path / "bad", b"x", _spec(real_label="FAKE"))
    with pytest.raises(DataError, match="threshold"):
        write_bundle(tmp_path / "bad", b"x", _spec(threshold=1.5))
