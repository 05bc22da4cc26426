"""Text through the whole platform on tiny generated data: ingest -> validate -> train -> evaluate ->
gate -> optimize -> register -> ``aidetect serve models:/...@candidate`` -> V2 requests with tritonclient
(outputs, metadata, bad inputs) -> the inference log holds text features, not the text."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.http as th
from tritonclient.utils import InferenceServerException

from aidetect import flows
from aidetect.data.text.demo import generate_text_demo
from aidetect.data.text.features import TEXT_FEATURE_COLUMNS
from aidetect.data.text.normalize import normalize_text, text_sha256
from aidetect.monitoring.check import run_check
from aidetect.monitoring.config import DriftConfig
from aidetect.refs import ModelRef
from tests.helpers.serving import aidetect_serve

NAME = "text-e2e"


def _infer(client: th.InferenceServerClient, texts: list[bytes], binary: bool = True) -> th.InferResult:
    inp = th.InferInput("text", [len(texts)], "BYTES")
    inp.set_data_from_numpy(np.array(texts, dtype=np.object_), binary_data=binary)
    return client.infer(NAME, [inp])


@pytest.mark.slow
def test_text_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stores = flows.Stores(model_name=NAME)
    src = generate_text_demo(tmp_path / "demo.csv", n_groups=120)
    dataset = flows.ingest(str(src), stores).dataset
    assert dataset.open().meta["modality"] == "text"
    assert flows.validate(dataset, stores, out=str(tmp_path / "validation")).result.success
    model, _ = flows.train(dataset, stores, tmp_path / "model", preset="tfidf_lr")
    evaluation = flows.evaluate(model, stores)
    assert evaluation.passed, evaluation.failures
    bundle = flows.optimize(model, stores, tmp_path / "bundle")
    assert bundle.report["variants"][0]["max_probability_diff"] < 1e-4
    info = flows.register(model, stores)
    assert info.tags["modality"] == "text" and "candidate" in info.aliases

    log_dir = tmp_path / "inference-log"
    monkeypatch.setenv("AIDETECT_SERVING__INFERENCE_LOG_URI", str(log_dir))
    monkeypatch.setenv("AIDETECT_SERVING__INFERENCE_LOG_FLUSH_ROWS", "1")
    args = ("--max-batch", "8")
    with aidetect_serve(f"models:/{NAME}@candidate", tmp_path, *args) as (url, _grpc):
        meta = httpx.get(f"{url}/v2/models/{NAME}").json()
        assert meta["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
        assert {o["name"] for o in meta["outputs"]} == {"probabilities", "label", "probability_ai"}
        assert meta["parameters"]["modality"] == "text" and meta["parameters"]["labels"] == ["human", "ai"]
        assert meta["parameters"]["model_version"] == info.version

        client = th.InferenceServerClient(url.removeprefix("http://"))
        human = "my aunt fixed the fence lol the cat sold some bread so yeah"
        ai = (
            "Certainly! My aunt fixed the fence, which is crucial overall. "
            "In conclusion, this seamlessly moment matters."
        )
        for binary in (True, False):
            res = _infer(client, [human.encode(), ai.encode(), "Grüße, naïve café".encode()], binary)
            probs, p_ai = res.as_numpy("probabilities"), res.as_numpy("probability_ai")
            assert probs.shape == (3, 2) and probs.dtype == np.float32
            np.testing.assert_allclose(p_ai, probs[:, 1], atol=1e-6)
            labels = [x.decode() for x in res.as_numpy("label")]
            assert labels[:2] == ["human", "ai"]

        bad = {
            "not valid UTF-8": [b"fine", b"bad \xff\xfe"],
            "empty": [b"   "],
            "control character": [b"nul \x00 here"],
            "above the limit": [b"x" * 200_001],
            "exceeds the limit 8": [b"t"] * 9,
        }
        for expected, texts in bad.items():
            with pytest.raises(InferenceServerException) as err:
                _infer(client, texts)
            assert expected in str(err.value), str(err.value)
        assert "element 1" in _error(client, [b"fine", b"bad \xff\xfe"])
        # a 10 MB text is refused by the request limit or the text limit, never a 500
        big = httpx.post(
            f"{url}/v2/models/{NAME}/infer",
            json={
                "inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["y" * 10_000_000]}]
            },
            timeout=60,
        )
        assert big.status_code in (400, 413), big.text

    files = sorted(log_dir.rglob("*.parquet"))
    deadline = time.monotonic() + 10
    while not files and time.monotonic() < deadline:
        time.sleep(0.2)
        files = sorted(log_dir.rglob("*.parquet"))
    logged = pd.concat(pd.read_parquet(f) for f in files)
    assert set(TEXT_FEATURE_COLUMNS) <= set(logged.columns) and "text" not in logged.columns
    assert {"label", "probability_fake", "p_human", "p_ai"} <= set(logged.columns)
    assert len(logged) == 6
    # each row is keyed by the sha256 of its normalised text (the label log's key for texts), not the text
    sent = {text_sha256(normalize_text(t)) for t in (human, ai, "Grüße, naïve café")}
    assert set(logged["sha256"]) == sent
    # drift works on the text features (the reference profile of a text version holds them)
    cfg = DriftConfig(
        log_uri=str(log_dir), reports_uri=str(tmp_path / "drift"), min_rows=5, min_reference_rows=10
    )
    verdict = run_check(ModelRef.parse(f"{NAME}/{info.version}"), cfg)  # no retrain callback: none
    assert {f["column"] for f in verdict["features"]} == set(TEXT_FEATURE_COLUMNS)


def _error(client: th.InferenceServerClient, texts: list[bytes]) -> str:
    try:
        _infer(client, texts)
    except InferenceServerException as exc:
        return str(exc)
    raise AssertionError("expected a client error")
