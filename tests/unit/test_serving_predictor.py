"""The predictor in-process over a tiny hand-built ONNX graph: outputs, labels, chaos knobs, no torch."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.serving import jpeg, solid, tiny_bundle


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
    from aidetect.serving.predictor import AidetectPredictor, InjectedFault

    monkeypatch.setenv("AIDETECT_SERVE_FAULT_ERROR_RATE", "1.0")
    monkeypatch.setenv("AIDETECT_SERVE_FAULT_DELAY_MS", "150")
    p = AidetectPredictor(load_bundle(tiny_bundle(tmp_path / "b")))
    p.load()
    t = time.perf_counter()
    with pytest.raises(InjectedFault):
        asyncio.run(p(_request([jpeg(16)])))
    assert time.perf_counter() - t >= 0.15
    monkeypatch.setenv("AIDETECT_SERVE_FAULT_ERROR_RATE", "0")
    monkeypatch.setenv("AIDETECT_SERVE_FAULT_DELAY_MS", "")
    q = AidetectPredictor(load_bundle(tiny_bundle(tmp_path / "c")))
    q.load()
    assert asyncio.run(q(_request([jpeg(16)])))[0].outputs[0].data.shape == (1, 2)


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
from aidetect.serving.server import build_predictor, install_routes
from aidetect.serving.config import ServingConfig
import aidetect.commands.serving, aidetect.serving.client, aidetect.serving.rest
p = build_predictor({str(bundle)!r}, ServingConfig(inference_log_uri={str(tmp_path / "log")!r}))
p.load()
assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))
print('ok')
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_predictor_survives_pickling_into_a_worker_process(tmp_path: Path) -> None:
    """REST workers > 1: KServe pickles the model into spawned processes; session and guard are rebuilt."""
    import pickle

    from aidetect.serving.bundle import load_bundle
    from aidetect.serving.guard import Guard
    from aidetect.serving.predictor import AidetectPredictor

    guard = Guard(["t"], required=True, rate=5.0, burst=2)
    p = AidetectPredictor(load_bundle(tiny_bundle(tmp_path / "b")), guard=guard)
    p.load()
    clone = pickle.loads(pickle.dumps(p))
    assert clone.ready and clone.classifier is not None and clone.classifier is not p.classifier
    request = _request([solid((0, 0, 255))])
    a = asyncio.run(p(request))[0].outputs[0].data
    b = asyncio.run(clone(_request([solid((0, 0, 255))])))[0].outputs[0].data
    np.testing.assert_array_equal(a, b)
    assert clone.guard.bucket.take("k") == 0.0  # the rebuilt bucket works (fresh lock)
