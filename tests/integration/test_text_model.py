"""Text models end to end below serving: train (both archs) -> evaluate -> gate -> optimize -> register,
on tiny generated data, with a real MLflow (SQLite under the test's AIDETECT_HOME)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aidetect import registry
from aidetect.data.text.demo import generate_text_demo
from aidetect.data.text.encode import encode_ids
from aidetect.data.text.versions import ingest_text, open_text_version
from aidetect.data.versions import DatasetVersion
from aidetect.errors import GateFailedError
from aidetect.model.lineage import read_json
from aidetect.model.text import runtime
from aidetect.model.text.bundle import optimize_text, register_text
from aidetect.model.text.config import load_text_eval_config, load_text_gates_config, load_text_train_config
from aidetect.model.text.evaluate import evaluate_text
from aidetect.model.text.train import train_text


@pytest.fixture
def version(tmp_path: Path) -> DatasetVersion:
    src = generate_text_demo(tmp_path / "demo.jsonl", n_groups=120)
    result = ingest_text(str(src), root=str(tmp_path / "ds"))
    return open_text_version(result.version_id, str(tmp_path / "ds"))


def test_tfidf_trains_gates_optimizes_and_registers(version: DatasetVersion, tmp_path: Path) -> None:
    model_dir = train_text(version, tmp_path / "m", load_text_train_config())
    meta = read_json(model_dir / "meta.json")
    assert meta["modality"] == "text" and meta["real_label"] == "human"
    assert meta["onnx_parity_max_diff"] < 1e-4
    report = evaluate_text(
        model_dir,
        version,
        model_dir / "eval",
        eval_cfg=load_text_eval_config(),
        gates_cfg=load_text_gates_config(),
    )
    assert report["passed"], report["gates"]["failures"]
    assert set(report["slices"]) == {"domain", "generator", "length"}
    assert set(report["perturbations"]) == {"lowercase", "first_256", "one_line"}
    assert report["metrics"]["roc_auc"] > 0.95
    opt = optimize_text(model_dir / "eval", version, tmp_path / "bundle")
    assert opt["variants"][0]["max_probability_diff"] < 1e-4
    assert read_json(tmp_path / "bundle" / "bundle.json")["modality"] == "text"
    info = register_text(model_dir, tmp_path / "bundle", version, model_name="text-test")
    assert info.tags["modality"] == "text" and info.tags["gate_status"] == "passed"
    assert "candidate" in info.aliases
    got = registry.download_artifacts("text-test", info.version, "serving", tmp_path / "dl")
    stamped = read_json(Path(got) / "bundle.json")
    assert stamped["model_version"] == info.version and stamped["threshold"] == pytest.approx(
        report["threshold"]
    )
    ref = registry.download_artifacts("text-test", info.version, "reference", tmp_path / "ref")
    assert (Path(ref) / "reference.parquet").exists()


def test_failed_gates_register_nothing(version: DatasetVersion, tmp_path: Path) -> None:
    model_dir = train_text(version, tmp_path / "m", load_text_train_config(), track=False)
    gates = load_text_gates_config()
    gates.min["accuracy"] = 1.01  # unreachable
    report = evaluate_text(
        model_dir, version, model_dir / "eval", eval_cfg=load_text_eval_config(), gates_cfg=gates
    )
    assert not report["passed"]
    optimize_text(model_dir / "eval", version, tmp_path / "bundle")
    with pytest.raises(GateFailedError, match="min accuracy"):
        register_text(model_dir, tmp_path / "bundle", version, model_name="text-test")
    assert registry.client().search_model_versions("name='text-test'") == []


@pytest.mark.slow
def test_byte_cnn_exports_and_ignores_batch_padding(version: DatasetVersion, tmp_path: Path) -> None:
    cfg = load_text_train_config(
        overrides={"arch": "byte_cnn", "cnn": {"epochs": 2, "channels": 32, "embed": 16}}
    )
    model_dir = train_text(version, tmp_path / "cnn", cfg, track=False)
    assert read_json(model_dir / "meta.json")["onnx_parity_max_diff"] < 1e-4
    sess = runtime.session(model_dir / "model.onnx")
    texts = ["short one", "a much longer text " * 20]
    alone = np.concatenate([sess.run(None, {"ids": encode_ids([t], 1024, min_len=8)})[0] for t in texts])
    together = sess.run(None, {"ids": encode_ids(texts, 1024, min_len=8)})[0]
    np.testing.assert_allclose(alone, together, atol=1e-5)
