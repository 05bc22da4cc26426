"""A real ``aidetect serve`` driven by standard V2 clients (tritonclient, KServe) over REST and gRPC."""

from __future__ import annotations

import base64
import io
import json
import struct
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.helpers.serving import aidetect_serve, jpeg, make_bundle, png_header_bomb

MODEL = "detector"
OUTPUT_NAMES = ("probabilities", "label", "probability_fake", "verdict", "verdict_reasons", "provenance")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    work = tmp_path_factory.mktemp("serve")
    bundle = make_bundle(work / "bundle", name=MODEL)
    with aidetect_serve(str(bundle), work, "--max-batch", "8", "--max-request-bytes", "2000000") as urls:
        yield urls


@pytest.fixture(scope="module")
def grpc_results(server: tuple[str, str]) -> dict:
    """tritonclient gRPC checks, in their own process (see tests/helpers/grpc_checks.py)."""
    proc = subprocess.run(
        [sys.executable, "-m", "tests.helpers.grpc_checks", server[1], MODEL],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _images() -> list[bytes]:
    """A JPEG, a PNG and a WebP of different sizes."""
    out = [jpeg(48, seed=1)]
    for fmt, size in (("PNG", 40), ("WEBP", 64)):
        buf = io.BytesIO()
        Image.fromarray(np.random.default_rng(size).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
            buf, fmt
        )
        out.append(buf.getvalue())
    return out


def _check_outputs(probs: np.ndarray, labels: list, p_fake: np.ndarray, n: int) -> None:
    assert probs.shape == (n, 2) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(p_fake, probs[:, 1], atol=1e-6)  # column order REAL, FAKE (metadata)
    labels = [x.decode() if isinstance(x, bytes) else x for x in labels]
    assert labels == ["FAKE" if p >= 0.5 else "REAL" for p in p_fake]


def test_health_and_metadata_over_rest_and_grpc(server: tuple[str, str], grpc_results: dict) -> None:
    import tritonclient.http as th

    http_url = server[0]
    rest = th.InferenceServerClient(http_url.removeprefix("http://"))
    assert rest.is_server_live() and rest.is_server_ready() and rest.is_model_ready(MODEL)
    meta = rest.get_model_metadata(MODEL)
    assert meta["versions"] == ["7"]
    assert meta["parameters"]["labels"] == ["REAL", "FAKE"]
    assert {i["name"]: i["datatype"] for i in meta["inputs"]} == {
        "image": "BYTES",
        "pixels": "UINT8",
        "tensor": "FP32",
    }
    assert [o["name"] for o in meta["outputs"]] == [*OUTPUT_NAMES]
    assert meta["outputs"][0]["shape"] == [-1, 2]
    g = grpc_results
    assert g["live"] and g["ready"] and g["model_ready"]
    assert g["outputs"] == [*OUTPUT_NAMES]
    assert not rest.is_model_ready("no-such-model")


def test_tritonclient_http_binary_and_json(server: tuple[str, str]) -> None:
    import tritonclient.http as th

    client = th.InferenceServerClient(server[0].removeprefix("http://"))
    images = np.array(_images(), dtype=np.object_)
    inp = th.InferInput("image", [3], "BYTES")
    inp.set_data_from_numpy(images, binary_data=True)  # binary tensor data extension
    outs = [
        th.InferRequestedOutput(n, binary_data=True) for n in ("probabilities", "label", "probability_fake")
    ]
    res = client.infer(MODEL, [inp], outputs=outs, request_id="req-1")
    assert res.get_response()["id"] == "req-1"
    probs = res.as_numpy("probabilities")
    _check_outputs(probs, list(res.as_numpy("label")), res.as_numpy("probability_fake"), 3)

    # plain JSON: BYTES elements as base64 strings; results identical
    b64 = np.array([base64.b64encode(b).decode() for b in _images()], dtype=np.object_)
    inp = th.InferInput("image", [3], "BYTES")
    inp.set_data_from_numpy(b64, binary_data=False)
    res2 = client.infer(MODEL, [inp])
    np.testing.assert_allclose(res2.as_numpy("probabilities"), probs, atol=1e-6)


def test_tritonclient_grpc_all_input_kinds_agree(grpc_results: dict) -> None:
    by_bytes = grpc_results["bytes"]
    ref = np.array(by_bytes["probabilities"], np.float32)
    _check_outputs(ref, by_bytes["label"], np.array(by_bytes["probability_fake"], np.float32), 2)
    np.testing.assert_allclose(np.array(grpc_results["pixels"]), ref, atol=1e-5)
    np.testing.assert_allclose(np.array(grpc_results["tensor"]), ref, atol=1e-5)


KSERVE_CLIENT_SCRIPT = """
import asyncio, json, sys
import numpy as np
from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig

http_url, grpc_url, model, *paths = sys.argv[1:]
images = np.array([open(p, "rb").read() for p in paths], dtype=np.object_)

def request(rid):
    inp = InferInput("image", [len(images)], "BYTES")
    inp.set_data_from_numpy(images, binary_data=True)
    return InferRequest(model, [inp], request_id=rid)

async def run():
    rest = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
    try:
        r1 = await rest.infer(http_url, request("k1"), model_name=model)
    finally:
        await rest.close()
    grpc = InferenceGRPCClient(grpc_url, timeout=30)
    try:
        ready = await grpc.is_model_ready(model)
        r2 = await grpc.infer(request("k2"))
    finally:
        await grpc.close()
    out = lambda r: r.get_output_by_name("probabilities").as_numpy().tolist()
    print(json.dumps({"ready": ready, "ids": [r1.id, r2.id], "rest": out(r1), "grpc": out(r2)}))

asyncio.run(run())
"""


def test_kserve_rest_and_grpc_clients(server: tuple[str, str], tmp_path: Path) -> None:
    # KServe's and tritonclient's generated protos clash in one process: separate process.
    paths = []
    for i, data in enumerate(_images()[:2]):
        p = tmp_path / f"img{i}"
        p.write_bytes(data)
        paths.append(str(p))
    proc = subprocess.run(
        [sys.executable, "-c", KSERVE_CLIENT_SCRIPT, *server, MODEL, *paths],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["ready"] is True and res["ids"] == ["k1", "k2"]
    p_rest, p_grpc = np.array(res["rest"]), np.array(res["grpc"])
    assert p_rest.shape == (2, 2)
    np.testing.assert_allclose(p_rest, p_grpc, atol=1e-6)


def _binary_request(items: list[bytes], name: str = "image", datatype: str = "BYTES") -> tuple[bytes, dict]:
    raw = b"".join(struct.pack("<I", len(b)) + b for b in items)
    header = (
        f'{{"inputs":[{{"name":"{name}","datatype":"{datatype}","shape":[{len(items)}],'
        f'"parameters":{{"binary_data_size":{len(raw)}}}}}]}}'
    ).encode()
    return header + raw, {
        "Inference-Header-Content-Length": str(len(header)),
        "Content-Type": "application/octet-stream",
    }


def test_bad_inputs_are_400_naming_input_and_index_and_server_keeps_serving(server: tuple[str, str]) -> None:
    url = f"{server[0]}/v2/models/{MODEL}/infer"
    good = jpeg(40, seed=3)

    def post(items: list[bytes], **kw: str) -> httpx.Response:
        body, headers = _binary_request(items, **kw)
        return httpx.post(url, content=body, headers=headers, timeout=30)

    r = post([good, b"\xff\xd8\xffnot really a jpeg"])  # bad
    assert r.status_code == 400 and "'image' element 1" in r.json()["error"]
    assert post([good]).status_code == 200  # good
    r = post([good, good, png_header_bomb()])  # oversized (pixel bomb)
    assert r.status_code == 400
    assert "'image' element 2" in r.json()["error"] and "pixel" in r.json()["error"]
    assert post([good]).status_code == 200  # still serving

    r = post([good], datatype="FP32")
    assert r.status_code == 400 and "expected datatype BYTES" in r.json()["error"]
    r = post([good], name="photo")
    assert r.status_code == 400 and "'photo'" in r.json()["error"] and "unknown input" in r.json()["error"]
    r = post([good] * 9)  # max batch 8
    assert r.status_code == 400 and "exceeds the limit 8" in r.json()["error"]
    r = httpx.post(
        url, json={"inputs": [{"name": "pixels", "datatype": "UINT8", "shape": [1, 4, 4, 3], "data": [1, 2]}]}
    )
    assert r.status_code == 400 and "'pixels'" in r.json()["error"] and "shape" in r.json()["error"]
    r = httpx.post(url, content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    body, headers = _binary_request([good])
    r = httpx.post(url, content=body[:-10], headers=headers)  # binary section shorter than declared
    assert r.status_code == 400 and "binary_data_size" in r.json()["error"]
    r = httpx.post(url, content=b"x" * 2_100_000, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert post([good]).status_code == 200


def test_grpc_bad_input_is_invalid_argument(grpc_results: dict) -> None:
    invalid = grpc_results["invalid_argument"]
    assert grpc_results["corrupt"]["status"] == invalid
    assert "'image' element 1" in grpc_results["corrupt"]["message"]
    assert (
        grpc_results["bad_shape"]["status"] == invalid and "'tensor'" in grpc_results["bad_shape"]["message"]
    )
    assert grpc_results["after_errors"] == 1


def test_metrics_follow_the_contract(server: tuple[str, str]) -> None:
    body, headers = _binary_request([jpeg(40, seed=9), b"junk"])
    assert (
        httpx.post(f"{server[0]}/v2/models/{MODEL}/infer", content=body, headers=headers).status_code == 400
    )
    text = httpx.get(f"{server[0]}/metrics").text
    for line in (
        'aidetect_requests_total{model="detector",protocol="rest",status="ok"}',
        'aidetect_requests_total{model="detector",protocol="rest",status="client_error"}',
        'aidetect_requests_total{model="detector",protocol="grpc",status="ok"}',
        'aidetect_request_duration_seconds_bucket{le="0.025",model="detector",protocol="rest",status="ok"}',
        'aidetect_rejected_inputs_total{model="detector",reason="corrupt"}',
        'aidetect_rejected_inputs_total{model="detector",reason="too_large"}',
        'aidetect_fake_probability_count{model="detector"}',
        'aidetect_model_info{dataset_version="test-dataset",model="detector",variant="fp32",version="7"} 1.0',
    ):
        assert line in text, line
    predicted = sum(
        float(ln.rsplit(" ", 1)[1])
        for ln in text.splitlines()
        if ln.startswith("aidetect_predictions_total{")
    )
    assert predicted >= 10
    assert 'status="server_error"' not in text


def test_predict_command_prints_label_and_probability(server: tuple[str, str], tmp_path: Path) -> None:
    from click.testing import CliRunner

    from aidetect.cli import main

    paths = []
    for i, data in enumerate(_images()[:2]):
        p = tmp_path / f"img{i}.bin"
        p.write_bytes(data)
        paths.append(str(p))
    result = CliRunner().invoke(main, ["predict", *paths, "--url", server[0]])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 2 and all("p(fake)=" in ln for ln in lines)
    assert lines[0].startswith(paths[0]) and lines[0].split()[1] in {"REAL", "FAKE"}
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    result = CliRunner().invoke(main, ["predict", str(bad), "--url", server[0]])
    assert result.exit_code != 0 and f"error: {bad}" in result.output and "element 0" in result.output
