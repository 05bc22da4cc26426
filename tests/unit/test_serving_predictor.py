"""The predictor in-process over a tiny hand-built ONNX graph: outputs, the decision rule, chaos knobs,
pickling into REST workers, no torch."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.serving import (
    RULE_VS_ARGMAX,
    jpeg,
    solid,
    three_class_bundle,
    three_class_images,
    tiny_bundle,
)


def _request(images: list[bytes], name: str = "image"):
    from aidetect.serving.kserve_compat import InferInput, InferRequest

    inp = InferInput(name, [len(images)], "BYTES")
    inp.set_data_from_numpy(np.array(images, dtype=np.object_), binary_data=True)
    return InferRequest("tiny", [inp], request_id="r1")


@pytest.fixture
def predictor(tmp_path: Path):
    from aidetect.serving.bundle import load_bundle
    from aidetect.serving.predictor import AidetectPredictor

    p = AidetectPredictor(load_bundle(tiny_bundle(tmp_path / "b")))
    p.load()
    return p


def test_outputs_labels_and_threshold(predictor) -> None:
    res, _ = asyncio.run(predictor(_request([solid((255, 0, 0)), solid((0, 0, 255))])))
    assert res.id == "r1" and res.model_version == "3"
    out = {o.name: o for o in res.outputs}
    probs = out["probabilities"].data
    assert probs.shape == (2, 2)
    expected = np.exp([1, 0]) / np.exp([1, 0]).sum()  # red image: logits (1, 0)
    np.testing.assert_allclose(probs[0], expected, atol=1e-6)
    np.testing.assert_allclose(probs[1], expected[::-1], atol=1e-6)
    assert [s.decode() for s in out["label"].data] == ["REAL", "FAKE"]
    np.testing.assert_allclose(out["probability_fake"].data, probs[:, 1])


def test_threshold_moves_the_label(tmp_path: Path) -> None:
    from aidetect.serving.bundle import load_bundle
    from aidetect.serving.predictor import AidetectPredictor

    p = AidetectPredictor(load_bundle(tiny_bundle(tmp_path / "b", threshold=0.2)))
    p.load()
    res, _ = asyncio.run(p(_request([solid((255, 0, 0))])))  # p(fake) = 0.269 >= 0.2
    assert res.outputs[1].data[0] == b"FAKE"


def test_fault_knobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from aidetect.serving.bundle import load_bundle
    from aidetect.serving.config import ServingConfig, load_serving_config
    from aidetect.serving.predictor import AidetectPredictor, InjectedFault

    monkeypatch.setenv("AIDETECT_SERVING__FAULT_ERROR_RATE", "1.0")  # the config rule, as for every field
    monkeypatch.setenv("AIDETECT_SERVING__FAULT_DELAY_MS", "150")
    cfg = load_serving_config()
    assert (cfg.fault_error_rate, cfg.fault_delay_ms) == (1.0, 150.0)
    p = AidetectPredictor(load_bundle(tiny_bundle(tmp_path / "b")), cfg)
    p.load()
    t = time.perf_counter()
    with pytest.raises(InjectedFault):
        asyncio.run(p(_request([jpeg(16)])))
    assert time.perf_counter() - t >= 0.15
    q = AidetectPredictor(load_bundle(tiny_bundle(tmp_path / "c")), ServingConfig())
    q.load()
    assert asyncio.run(q(_request([jpeg(16)])))[0].outputs[0].data.shape == (1, 2)


def test_three_class_labels_follow_the_decision_rule_not_argmax(tmp_path: Path) -> None:
    from aidetect.decision import DecisionSpec
    from aidetect.serving.bundle import load_bundle
    from aidetect.serving.predictor import AidetectPredictor

    bundle = load_bundle(three_class_bundle(tmp_path / "b"))
    p = AidetectPredictor(bundle)
    p.load()
    res, _ = asyncio.run(p(_request(three_class_images())))
    out = {o.name: o for o in res.outputs}
    # probability_fake is for binary models only
    assert set(out) == {"probabilities", "label", "verdict", "verdict_reasons", "provenance"}
    probs, labels = out["probabilities"].data, [s.decode() for s in out["label"].data]
    rule = DecisionSpec.from_meta(json.loads((bundle.root / "bundle.json").read_text()))
    assert rule.real_label == "real" and rule.threshold == 0.6
    assert labels == rule.names(rule.decide(probs))
    argmax = rule.names(probs.argmax(axis=1))
    k = len(RULE_VS_ARGMAX)
    assert (argmax[:k], labels[:k]) == (["real", "ai-generated"], ["ai-generated", "real"])
    assert p.describe()["real_label"] == "real" and p.describe()["positive_label"] is None


def test_unknown_requested_output_is_a_client_error(predictor) -> None:
    from aidetect.serving.inputs import RejectedInput
    from aidetect.serving.kserve_compat import RequestedOutput

    req = _request([jpeg(16)])
    req.request_outputs = [RequestedOutput("scores")]
    with pytest.raises(RejectedInput, match="output 'scores'"):
        asyncio.run(predictor(req))


def test_serving_never_imports_torch(tmp_path: Path) -> None:
    bundle = tiny_bundle(tmp_path / "b")
    code = f"""
import sys, asyncio
sys.argv = sys.argv[:1]
from aidetect.serving.app import build_predictor, install_routes
from aidetect.serving.config import ServingConfig
import aidetect.commands.serving, aidetect.serving.client, aidetect.serving.rest
p = build_predictor({str(bundle)!r}, ServingConfig(inference_log_uri={str(tmp_path / "log")!r}))
p.load()
assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))
print('ok')
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


WORKER_STARTS: list[str] = []


def _record_worker_start(predictor) -> None:  # a module function: picklable by reference
    WORKER_STARTS.append(predictor.name)


def test_predictor_survives_pickling_into_a_worker_process(tmp_path: Path) -> None:
    """REST workers > 1: KServe pickles the model into spawned processes; the session, the guard's
    bucket and the inference log are rebuilt there, and the worker hook installs the routes."""
    import pickle

    import pandas as pd

    from aidetect.serving.app import build_guard, build_inference_log
    from aidetect.serving.bundle import load_bundle
    from aidetect.serving.config import ServingConfig
    from aidetect.serving.predictor import AidetectPredictor

    cfg = ServingConfig(
        rate_limit_per_second=5.0, rate_limit_burst=2, inference_log_uri=str(tmp_path / "log")
    )
    bundle = load_bundle(tiny_bundle(tmp_path / "b"))
    p = AidetectPredictor(
        bundle,
        cfg,
        guard=build_guard(cfg),
        inference_log=build_inference_log(cfg, bundle),
        on_worker_start=_record_worker_start,
    )
    p.load()
    WORKER_STARTS.clear()
    clone = pickle.loads(pickle.dumps(p))
    assert WORKER_STARTS == ["tiny"]
    assert clone.ready and clone.classifier is not None and clone.classifier is not p.classifier
    a = asyncio.run(p(_request([solid((0, 0, 255))])))[0].outputs[0].data
    b = asyncio.run(clone(_request([solid((0, 0, 255))])))[0].outputs[0].data
    np.testing.assert_array_equal(a, b)
    assert clone.guard is not None and clone.guard.bucket is not None
    assert clone.guard.bucket.take("k") == 0.0  # the rebuilt bucket works (fresh lock)
    assert clone.inference_log is not None and clone.inference_log is not p.inference_log
    clone.stop()
    p.stop()
    rows = pd.concat(pd.read_parquet(f) for f in sorted((tmp_path / "log").rglob("*.parquet")))
    assert len(rows) == 2 and list(rows["label"]) == ["FAKE", "FAKE"]  # one row from each process copy
