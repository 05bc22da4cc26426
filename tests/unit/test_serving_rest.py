"""The raw ASGI infer endpoint in front of KServe's app, driven by an HTTP client (httpx, in process)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from aidetect.serving.client import build_image_request
from tests.helpers.serving import solid, tiny_bundle


class Recorder:
    """The inner app: answers 299 so a test can tell the request went past the endpoint."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _endpoint(tmp_path: Path, infer_threads: int = 2, load: bool = True, **cfg: Any):
    from aidetect.serving.bundle import load_bundle
    from aidetect.serving.config import ServingConfig
    from aidetect.serving.predictor import AidetectPredictor
    from aidetect.serving.rest import InferEndpoint

    config = ServingConfig(infer_threads=infer_threads, **cfg)
    predictor = AidetectPredictor(load_bundle(tiny_bundle(tmp_path / "b")), config)
    if load:
        predictor.load()
    inner = Recorder()
    return InferEndpoint(inner, predictor), inner


def _post(app: Any, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(path, content=body, headers=headers)

    return asyncio.run(go())


@pytest.mark.parametrize("infer_threads", [0, 2])
def test_infer_answers_v2_json_on_and_off_the_event_loop(tmp_path: Path, infer_threads: int) -> None:
    app, inner = _endpoint(tmp_path, infer_threads)
    body, headers = build_image_request([solid((255, 0, 0)), solid((0, 0, 255))], request_id="abc")
    r = _post(app, "/v2/models/tiny/infer", body, headers)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    doc = orjson.loads(r.content)
    assert doc["id"] == "abc" and doc["model_name"] == "tiny" and doc["model_version"] == "3"
    out = {o["name"]: o for o in doc["outputs"]}
    assert out["label"]["data"] == ["REAL", "FAKE"]
    probs = np.asarray(out["probabilities"]["data"]).reshape(out["probabilities"]["shape"])
    expected = np.exp([1, 0]) / np.exp([1, 0]).sum()
    np.testing.assert_allclose(probs, [expected, expected[::-1]], atol=1e-6)
    assert inner.paths == []  # handled here, never reached KServe's app


def test_other_routes_go_on_to_kserve(tmp_path: Path) -> None:
    app, inner = _endpoint(tmp_path)
    body, headers = build_image_request([solid((255, 0, 0))])
    for path in ("/v2/models/tiny/versions/3/infer", "/v2/models/tiny/ready", "/v1/models/tiny:predict"):
        assert _post(app, path, body, headers).status_code == 299
    assert inner.paths == [
        "/v2/models/tiny/versions/3/infer",
        "/v2/models/tiny/ready",
        "/v1/models/tiny:predict",
    ]


def test_client_errors_name_the_problem_and_serving_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app, _ = _endpoint(tmp_path)
    body, headers = build_image_request([solid((255, 0, 0)), b"\xff\xd8\xff broken"])
    with caplog.at_level("WARNING", logger="aidetect.serving.rest"):
        r = _post(app, "/v2/models/tiny/infer", body, headers)
    assert r.status_code == 400 and "element 1" in r.json()["error"]
    (record,) = caplog.records  # one warning line, no traceback
    assert record.levelname == "WARNING" and "element 1" in record.getMessage() and not record.exc_info
    r = _post(app, "/v2/models/tiny/infer", b"{not json", {"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    r = _post(app, "/v2/models/nope/infer", *build_image_request([solid((1, 2, 3))]))
    assert r.status_code == 404 and "nope" in r.json()["error"]
    assert _post(app, "/v2/models/tiny/infer", *build_image_request([solid((1, 2, 3))])).status_code == 200


def test_not_ready_is_503_and_server_faults_are_500(tmp_path: Path) -> None:
    app, _ = _endpoint(tmp_path, load=False)
    r = _post(app, "/v2/models/tiny/infer", *build_image_request([solid((1, 2, 3))]))
    assert r.status_code == 503
    app, _ = _endpoint(tmp_path / "faulty", fault_error_rate=1.0)
    r = _post(app, "/v2/models/tiny/infer", *build_image_request([solid((1, 2, 3))]))
    assert r.status_code == 500 and r.json()["error"] == "internal server error"  # no internals
    assert "InjectedFault" not in r.text and len(r.json()["request_id"]) == 32
