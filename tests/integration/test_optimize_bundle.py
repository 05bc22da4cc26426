"""``aidetect optimize``: ONNX variants checked against torch and timed; the bundle logged to MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def dataset_and_checkpoint(tmp_path: Path) -> tuple[str, Path]:
    import torch

    from aidetect.data.demo import generate_demo
    from aidetect.data.imaging import IMAGENET_MEAN, IMAGENET_STD
    from aidetect.data.versions import ingest
    from aidetect.model.checkpoint import save_checkpoint
    from aidetect.model.networks import build_model

    version = ingest(str(generate_demo(tmp_path / "demo", n_per_class=80, size=32))).version_id
    torch.manual_seed(0)
    meta = {"arch": "compact_s", "num_classes": 2, "input_size": 32, "labels": ["REAL", "FAKE"]}
    meta |= {
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "threshold": 0.6,
        "dataset_version": version,
    }
    ckpt = tmp_path / "run" / "checkpoint" / "model.pt"
    save_checkpoint(str(ckpt), build_model("compact_s", 2, 32), meta)
    return version, ckpt


@pytest.mark.slow
def test_optimize_builds_checked_bundle_and_logs_it_to_the_model_version(
    dataset_and_checkpoint: tuple[str, Path],
    tmp_path: Path,
    mlflow_server_uri: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from click.testing import CliRunner

    from aidetect import registry
    from aidetect.cli import main
    from aidetect.data.versions import open_version
    from aidetect.model.checkpoint import load_checkpoint
    from aidetect.model.optimize import preprocess_images, torch_probabilities
    from aidetect.serving.bundle import load_bundle
    from aidetect.serving.classifier import OnnxClassifier

    version, ckpt = dataset_and_checkpoint
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server_uri)
    with registry.run() as run_id:
        registry.log_artifacts(run_id, ckpt.parent, "checkpoint")
    tags = {"dataset_version": version, "git_commit": "abc", "gate_status": "passed", "threshold": "0.6"}
    mv = registry.register_version(run_id, "detector", tags=tags)

    out = tmp_path / "bundle"
    result = CliRunner().invoke(
        main, ["optimize", "--model", "models:/detector@candidate", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "chosen:" in result.output and "fp32-opt" in result.output

    bundle = load_bundle(out)
    spec = bundle.spec
    assert (spec.model_name, spec.model_version, spec.dataset_version) == ("detector", mv.version, version)
    assert spec.threshold == 0.6 and spec.labels == ["REAL", "FAKE"] and spec.positive_label == "FAKE"
    report = spec.extra["optimize"]
    variants = {v["variant"]: v for v in report["variants"]}
    assert {"fp32", "fp32-opt"} <= set(variants)
    chosen = variants[spec.variant]
    assert chosen["passed"] and chosen["accuracy_diff_points"] <= 0.3
    passing = [v for v in variants.values() if v["passed"]]
    assert chosen["latency_ms_batch1"] == min(v["latency_ms_batch1"] for v in passing)
    assert variants["fp32"]["max_probability_diff"] < 1e-4  # the plain export is numerically faithful

    # served probabilities agree with torch on the validation images within the reported bound
    ds = open_version(version)
    x = preprocess_images(ds.read_images("val"), 32, spec.mean, spec.std)
    model, _ = load_checkpoint(str(ckpt))
    ref = torch_probabilities(model, x)
    got = OnnxClassifier(bundle)(x)
    assert float(np.abs(got - ref).max()) <= chosen["max_probability_diff"] + 1e-5

    # the bundle is attached to the model version and loads from models:/ too
    remote = load_bundle("models:/detector@candidate")
    assert json.loads((remote.root / "bundle.json").read_text())["variant"] == spec.variant
    assert remote.onnx_path.read_bytes() == bundle.onnx_path.read_bytes()


def test_optimize_refuses_when_no_variant_keeps_accuracy(
    dataset_and_checkpoint: tuple[str, Path], tmp_path: Path
) -> None:
    from aidetect.errors import DataError
    from aidetect.model.optimize import optimize

    version, ckpt = dataset_and_checkpoint
    with pytest.raises(DataError, match="no ONNX variant"):
        optimize(str(ckpt.parent), version, str(tmp_path / "b"), variants=["fp32"], max_accuracy_drop=-1.0)
    assert not (tmp_path / "b").exists()  # nothing half-written


def test_a_flip_averaged_checkpoint_exports_a_mirror_invariant_bundle(
    dataset_and_checkpoint: tuple[str, Path], tmp_path: Path
) -> None:
    from aidetect.data.versions import open_version
    from aidetect.model.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
    from aidetect.model.networks import FlipAveraged
    from aidetect.model.optimize import optimize, preprocess_images, torch_probabilities
    from aidetect.serving.bundle import load_bundle
    from aidetect.serving.classifier import OnnxClassifier
    from tests.helpers.models import break_mirror_symmetry

    version, ckpt = dataset_and_checkpoint
    plain, meta = load_checkpoint(str(ckpt))
    break_mirror_symmetry(plain)
    flipped = tmp_path / "flip" / "model.pt"
    save_checkpoint(str(flipped), plain, {**read_checkpoint(str(ckpt))["meta"], "flip_average": True})

    optimize(str(flipped), version, str(tmp_path / "b"), variants=["fp32"], max_accuracy_drop=100.0)
    bundle = load_bundle(tmp_path / "b")
    x = preprocess_images(open_version(version).read_images("val"), 32, meta["mean"], meta["std"])
    served = OnnxClassifier(bundle)
    got, mirrored = served(x), served(np.ascontiguousarray(x[..., ::-1]))
    np.testing.assert_allclose(got, mirrored, atol=1e-5)  # the graph averages both views
    model, _ = load_checkpoint(str(flipped))
    assert isinstance(model, FlipAveraged)
    np.testing.assert_allclose(got, torch_probabilities(model, x), atol=1e-4)
    assert float(np.abs(got - torch_probabilities(plain, x)).max()) > 1e-3  # differs from one view
