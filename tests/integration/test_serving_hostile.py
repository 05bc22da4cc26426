"""A hostile client against a real ``aidetect serve`` (REST via httpx, gRPC via grpc): every attack gets a
clear 4xx (or a 503 when the server sheds load), never a 5xx, a dropped connection or a traceback, and
the next valid request is answered."""

from __future__ import annotations

import base64
import concurrent.futures as cf
import io
import json
import os
import time
import uuid
from pathlib import Path

import grpc
import httpx
import numpy as np
import psutil
import pytest
from PIL import Image

from aidetect.serving import kserve_compat  # noqa: F401  (imports KServe without parsing pytest's argv)
from tests.helpers.edge import Served, environ, post_json, serve
from tests.helpers.serving import solid, tiny_bundle

pytestmark = pytest.mark.slow  # real servers

# after kserve_compat above, which imports KServe without letting it parse pytest's command line
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb  # noqa: E402
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pbg  # noqa: E402

TOKEN, OTHER = "t0ken-alpha", "t0ken-beta"
MODEL = "tiny"


def _png(w: int, h: int, rgb: tuple[int, int, int] = (200, 10, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), rgb).save(buf, "PNG")
    return buf.getvalue()


def _image_doc(images: list[bytes], **extra: object) -> dict:
    data = [base64.b64encode(b).decode() for b in images]
    return {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [len(images)], "data": data}], **extra}


def _infer(s: Served, doc: object, token: str | None = TOKEN, model: str = MODEL, **kw) -> httpx.Response:
    return post_json(f"{s.url}/v2/models/{model}/infer", doc, token, **kw)


def _assert_serves(s: Served, token: str | None = TOKEN) -> None:
    r = _infer(s, _image_doc([solid((0, 0, 250))]), token)
    assert r.status_code == 200, r.text
    assert {o["name"] for o in r.json()["outputs"]} >= {"label", "probabilities"}


def _grpc(s: Served, method: str, request: object, token: str | None = None) -> tuple[str, object]:
    """``(status code name, response or None)`` of one unary call."""
    with grpc.insecure_channel(s.grpc) as channel:
        stub = pbg.GRPCInferenceServiceStub(channel)
        metadata = [("authorization", f"Bearer {token}")] if token else None
        try:
            return "OK", getattr(stub, method)(request, metadata=metadata, timeout=30)
        except grpc.RpcError as exc:
            return exc.code().name, exc.details()


def _grpc_image_request(image: bytes, request_id: str = "") -> pb.ModelInferRequest:
    inp = pb.ModelInferRequest.InferInputTensor(name="image", datatype="BYTES", shape=[1])
    inp.contents.bytes_contents.append(image)
    return pb.ModelInferRequest(model_name=MODEL, id=request_id, inputs=[inp])


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_bundle(tmp_path_factory.mktemp("bundle") / "tiny")


@pytest.fixture(scope="module")
def guarded(bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    """Auth on (two tokens), the inference log on a local folder."""
    work = tmp_path_factory.mktemp("guarded")
    env = environ(auth_required=True, inference_log_uri=work / "log", inference_log_flush_seconds=1)
    with serve(bundle, work, {**env, "AIDETECT_SERVE_TOKENS": f"{TOKEN},{OTHER}"}) as s:
        yield s


# --- the model repository ----------------------------------------------------------------------------


def test_nobody_can_unload_the_model_over_grpc_or_rest(guarded: Served) -> None:
    for token in (None, TOKEN):
        code, _ = _grpc(
            guarded, "RepositoryModelUnload", pb.RepositoryModelUnloadRequest(model_name=MODEL), token
        )
        assert code in {"UNIMPLEMENTED", "UNAUTHENTICATED", "PERMISSION_DENIED"}, code
        code, _ = _grpc(
            guarded, "RepositoryModelLoad", pb.RepositoryModelLoadRequest(model_name=MODEL), token
        )
        assert code in {"UNIMPLEMENTED", "UNAUTHENTICATED", "PERMISSION_DENIED"}, code
        headers = {"authorization": f"Bearer {token}"} if token else {}
        for path in (f"/v2/repository/models/{MODEL}/unload", f"/v2/repository/models/{MODEL}/load"):
            r = httpx.post(guarded.url + path, headers=headers, timeout=10)
            assert r.status_code in {401, 404, 405}, (path, r.status_code, r.text)
        r = httpx.post(f"{guarded.url}/v2/repository/index", headers=headers, timeout=10)
        assert r.status_code in {401, 404, 405}
    assert httpx.get(f"{guarded.url}/v2/health/live", timeout=10).status_code == 200
    assert httpx.get(f"{guarded.url}/v2/models/{MODEL}/ready", timeout=10).status_code == 200
    code, _ = _grpc(guarded, "ModelInfer", _grpc_image_request(solid((0, 0, 250))), TOKEN)
    assert code == "OK"
    _assert_serves(guarded)


# --- malformed bodies ----------------------------------------------------------------------------------


def _nested(depth: int) -> object:
    doc: object = 1
    for _ in range(depth):
        doc = [doc]
    return doc


MALFORMED = {
    "data is a number": {
        "inputs": [{"name": "pixels", "datatype": "UINT8", "shape": [1, 1, 1, 3], "data": 5}]
    },
    "image data is a number": {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": 5}]},
    "ragged pixels": {
        "inputs": [
            {"name": "pixels", "datatype": "UINT8", "shape": [1, 1, 2, 3], "data": [[1, 2, 3], [4, 5]]}
        ]
    },
    "ragged, list after scalar": {
        "inputs": [{"name": "tensor", "datatype": "FP32", "shape": [1, 3, 8, 8], "data": [1, [2, 3]]}]
    },
    "900-deep nesting": {
        "inputs": [{"name": "pixels", "datatype": "UINT8", "shape": [1], "data": _nested(900)}]
    },
    "900-deep image nesting": {
        "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": _nested(900)}]
    },
    "dict as data": {
        "inputs": [{"name": "tensor", "datatype": "FP32", "shape": [1, 3, 8, 8], "data": {"a": 1}}]
    },
    "shape of strings": {
        "inputs": [{"name": "image", "datatype": "BYTES", "shape": ["x"], "data": ["AA=="]}]
    },
    "huge shape": {
        "inputs": [{"name": "tensor", "datatype": "FP32", "shape": [1, 3, 2**40, 2**40], "data": [1]}]
    },
    "id is an object": {"id": {"x": [1]}, **_image_doc([solid((1, 2, 3))])},
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_data_is_a_400_without_a_traceback(guarded: Served, case: str) -> None:
    before = guarded.log_text().count("Traceback")
    r = _infer(guarded, MALFORMED[case])
    assert r.status_code == 400, (case, r.status_code, r.text[:300])
    assert set(r.json()) >= {"error"} and len(r.text) < 2000
    assert guarded.log_text().count("Traceback") == before
    _assert_serves(guarded)


def test_malformed_grpc_tensors_are_invalid_argument(guarded: Served) -> None:
    inp = pb.ModelInferRequest.InferInputTensor(name="pixels", datatype="UINT8", shape=[1, 2, 2, 3])
    inp.contents.uint_contents.extend([1, 2, 3])  # 3 values for 12
    code, _ = _grpc(guarded, "ModelInfer", pb.ModelInferRequest(model_name=MODEL, inputs=[inp]), TOKEN)
    assert code == "INVALID_ARGUMENT"
    huge = pb.ModelInferRequest.InferInputTensor(name="tensor", datatype="FP32", shape=[1, 3, 2**40, 2**40])
    code, _ = _grpc(guarded, "ModelInfer", pb.ModelInferRequest(model_name=MODEL, inputs=[huge]), TOKEN)
    assert code == "INVALID_ARGUMENT"
    code, _ = _grpc(guarded, "ModelInfer", _grpc_image_request(solid((0, 0, 250))), TOKEN)
    assert code == "OK"


def test_json_only_routes_take_no_body_beyond_the_json_limit(guarded: Served) -> None:
    """KServe's own routes parse a whole JSON body: they get max_json_bytes (8 MiB), not 64 MiB."""
    big = {"inputs": [{"name": "pixels", "datatype": "UINT8", "shape": [1], "data": [1] * 4_500_000}]}
    for path in (
        f"/v1/models/{MODEL}:predict",
        f"/v2/models/{MODEL}/versions/3/infer",
        f"/v2/models/{MODEL}/infer",
    ):
        r = post_json(guarded.url + path, big, TOKEN)
        assert r.status_code == 413, (path, r.status_code, r.text[:200])
    _assert_serves(guarded)


# --- what reaches logs, metrics and answers ----------------------------------------------------------


def test_made_up_model_names_create_no_metric_series(guarded: Served) -> None:
    names = [f"made-up-{uuid.uuid4().hex[:8]}" for _ in range(5)]
    for name in names:
        assert _infer(guarded, _image_doc([solid((1, 2, 3))]), model=name).status_code == 404
        assert _infer(guarded, {"inputs": 5}, model=name).status_code in {400, 404}
        code, _ = _grpc(
            guarded, "ModelInfer", _grpc_image_request(solid((0, 0, 250))).__class__(model_name=name), TOKEN
        )
        assert code in {"NOT_FOUND", "INVALID_ARGUMENT"}
    metrics = httpx.get(f"{guarded.url}/metrics", timeout=10).text
    assert not any(name in metrics for name in names)
    assert f'model="{MODEL}"' in metrics


def test_input_names_cannot_forge_log_lines(guarded: Served) -> None:
    forged = "x\r\nERROR FORGED entry from the client"
    doc = {"inputs": [{"name": forged, "datatype": "BYTES", "shape": [1], "data": ["AA=="]}]}
    r = _infer(guarded, doc)
    assert r.status_code == 400 and "\n" not in r.json()["error"]
    lines = guarded.log_text().splitlines()
    assert not any(line.startswith("ERROR FORGED") for line in lines)
    assert any("FORGED" in line for line in lines)  # it is logged, escaped, on the client-error line


def test_long_request_ids_are_refused_not_echoed(guarded: Served) -> None:
    big = "i" * 1_000_000
    r = _infer(guarded, _image_doc([solid((1, 2, 3))], id=big))
    assert r.status_code == 400 and len(r.content) < 1000
    ok = _infer(guarded, _image_doc([solid((1, 2, 3))], id="abc-123"))
    assert ok.status_code == 200 and ok.json()["id"] == "abc-123"
    code, _ = _grpc(guarded, "ModelInfer", _grpc_image_request(solid((1, 2, 3)), "j" * 100_000), TOKEN)
    assert code == "INVALID_ARGUMENT"


# --- server errors -----------------------------------------------------------------------------------


def test_a_server_error_answers_a_generic_message_and_a_request_id(bundle: Path, tmp_path: Path) -> None:
    with serve(bundle, tmp_path, environ(fault_error_rate=1.0)) as s:
        r = _infer(s, _image_doc([solid((1, 2, 3))]), token=None)
        assert r.status_code == 500
        body = r.json()
        assert "InjectedFault" not in r.text and "fault_error_rate" not in r.text
        assert body["error"] == "internal server error" and 8 <= len(body["request_id"]) <= 64
        assert body["request_id"] in s.log_text()  # the operator finds the trace by the id
        code, details = _grpc(s, "ModelInfer", _grpc_image_request(solid((1, 2, 3))))
        assert code == "INTERNAL" and "InjectedFault" not in str(details)


# --- rate-limit keys ---------------------------------------------------------------------------------


def test_rate_limit_keys_come_from_the_token_or_a_trusted_header_never_from_the_client(
    bundle: Path, tmp_path: Path
) -> None:
    env = environ(rate_limit_per_second=0.01, rate_limit_burst=1, rate_limit_client_header="x-client-id")
    with serve(bundle, tmp_path, env) as s:
        doc = _image_doc([solid((1, 2, 3))])
        # the trusted header (what the mesh sets) keys separate buckets
        assert _infer(s, doc, None, headers={"x-client-id": "a"}).status_code == 200
        assert _infer(s, doc, None, headers={"x-client-id": "b"}).status_code == 200
        assert _infer(s, doc, None, headers={"x-client-id": "a"}).status_code == 429
        # without it: the peer address; a client-chosen X-Forwarded-For buys no fresh bucket
        assert _infer(s, doc, None, headers={"x-forwarded-for": "10.0.0.1"}).status_code == 200
        r = _infer(s, doc, None, headers={"x-forwarded-for": "10.0.0.2"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        code, _ = _grpc(s, "ModelInfer", _grpc_image_request(solid((1, 2, 3))))
        assert code in {"OK", "RESOURCE_EXHAUSTED"}
        with grpc.insecure_channel(s.grpc) as channel:
            stub = pbg.GRPCInferenceServiceStub(channel)
            with pytest.raises(grpc.RpcError) as err:
                stub.ModelInfer(
                    _grpc_image_request(solid((1, 2, 3))), metadata=[("x-forwarded-for", "1.2.3.4")]
                )
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_rate_limit_with_auth_is_per_token(bundle: Path, tmp_path: Path) -> None:
    env = environ(auth_required=True, rate_limit_per_second=0.01, rate_limit_burst=1)
    with serve(bundle, tmp_path, {**env, "AIDETECT_SERVE_TOKENS": f"{TOKEN},{OTHER}"}) as s:
        doc = _image_doc([solid((1, 2, 3))])
        assert _infer(s, doc, TOKEN).status_code == 200
        assert _infer(s, doc, TOKEN, headers={"x-client-id": "fresh"}).status_code == 429
        assert _infer(s, doc, OTHER).status_code == 200
        code, _ = _grpc(s, "ModelInfer", _grpc_image_request(solid((1, 2, 3))), OTHER)
        assert code == "RESOURCE_EXHAUSTED"


# --- load shedding -----------------------------------------------------------------------------------


def test_requests_beyond_the_in_flight_limit_get_503_not_memory(bundle: Path, tmp_path: Path) -> None:
    with serve(bundle, tmp_path, environ(max_inflight_requests=2, fault_delay_ms=3000)) as s:
        doc = _image_doc([solid((1, 2, 3))])
        with cf.ThreadPoolExecutor(8) as pool:
            codes = sorted(pool.map(lambda _: _infer(s, doc, None).status_code, range(8)))
        assert set(codes) <= {200, 503} and codes.count(200) >= 2 and 503 in codes, codes
        shed = _infer(s, doc, None)  # alone now: served
        assert shed.status_code == 200


# --- memory ------------------------------------------------------------------------------------------


def _json_numbers(megabytes: int) -> dict:
    n = megabytes * 1024 * 1024 // 2  # "1," per value
    side = int((n // 3) ** 0.5)
    return {
        "inputs": [
            {
                "name": "pixels",
                "datatype": "UINT8",
                "shape": [1, side, side, 3],
                "data": [1] * (side * side * 3),
            }
        ]
    }


def _binary_pixels(h: int, w: int) -> tuple[bytes, dict[str, str]]:
    raw = np.zeros((1, h, w, 3), np.uint8).tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "pixels",
                    "datatype": "UINT8",
                    "shape": [1, h, w, 3],
                    "parameters": {"binary_data_size": len(raw)},
                }
            ]
        }
    ).encode()
    return header + raw, {
        "inference-header-content-length": str(len(header)),
        "content-type": "application/octet-stream",
    }


def _logged_rows(folder: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(f).num_rows for f in folder.rglob("*.parquet"))


def test_no_single_amplifying_request_raises_rss_by_300_mb(tmp_path: Path) -> None:
    """Default limits; a 224 px model; the inference log on (its writer decodes images too). Each
    request's rise: peak RSS (VmHWM, reset before it) over RSS before it, measured once the log
    writer has written the request's rows."""
    from tests.helpers.serving import make_bundle

    bundle = make_bundle(tmp_path / "b224", input_size=224, name=MODEL)
    log = tmp_path / "log"
    with serve(bundle, tmp_path, environ(inference_log_uri=log, inference_log_flush_seconds=0.2)) as s:
        for _ in range(3):
            _assert_serves(s, None)
        made = 3
        needle = _png(1, 100_000)
        attacks: dict[str, tuple[bytes, dict[str, str]] | dict] = {
            "1x100000 png": _image_doc([needle]),
            "64 needles": _image_doc([needle] * 64),
            "100000x1 png": _image_doc([_png(100_000, 1)]),
            "40 MP png": _image_doc([_png(6300, 6300)]),
            "json numbers, 50 MB": _json_numbers(50),
            "binary pixels at the body limit": _binary_pixels(1, 21_000_000),
            "binary pixels, a needle": _binary_pixels(1, 20_000_000),
        }
        grown: dict[str, int] = {}
        for name, attack in attacks.items():
            s.reset_peak()
            before = s.rss_kb()
            if isinstance(attack, tuple):
                body, headers = attack
                r = httpx.post(f"{s.url}/v2/models/{MODEL}/infer", content=body, headers=headers, timeout=120)
            else:
                r = _infer(s, attack, None, timeout=120)
            assert r.status_code in {200, 400, 413}, (name, r.status_code, r.text[:200])
            made += r.json()["outputs"][0]["shape"][0] if r.status_code == 200 else 0
            for _ in range(600):  # the writer has decoded and written this request's rows
                if _logged_rows(log) >= made:
                    break
                time.sleep(0.05)
            grown[name] = (s.rss_kb("VmHWM") - before) // 1024
        for name, values in {
            "grpc typed pixels, 60 M values": 60_000_000,
            "grpc typed, under the cap": 3_900_000,
        }.items():
            inp = pb.ModelInferRequest.InferInputTensor(
                name="pixels", datatype="UINT8", shape=[1, 1, values // 3, 3]
            )
            inp.contents.uint_contents.extend(np.zeros(values, np.uint8).tolist())
            s.reset_peak()
            before = s.rss_kb()
            code, _ = _grpc(s, "ModelInfer", pb.ModelInferRequest(model_name=MODEL, inputs=[inp]))
            assert code in {"OK", "RESOURCE_EXHAUSTED", "INVALID_ARGUMENT"}, (name, code)
            made += code == "OK"
            for _ in range(600):
                if _logged_rows(log) >= made:
                    break
                time.sleep(0.05)
            grown[name] = (s.rss_kb("VmHWM") - before) // 1024
        _assert_serves(s, None)
        assert _logged_rows(log) >= made
        print("RSS rise per request, MB:", grown)  # shown with -s
        assert max(grown.values()) < 300, grown


# --- shutdown ----------------------------------------------------------------------------------------


def test_sigterm_under_load_finishes_in_flight_requests_and_flushes_the_log(
    bundle: Path, tmp_path: Path
) -> None:
    """Requests held in flight (1.5 s each) when SIGTERM arrives are answered, every prediction reaches
    the inference log (flushed on the way out, not by the timer), and the server exits in its grace."""
    import signal
    import threading

    log = tmp_path / "log"
    env = environ(inference_log_uri=log, inference_log_flush_seconds=3600, fault_delay_ms=1500)
    with serve(bundle, tmp_path, env) as s:
        doc = _image_doc([solid((0, 0, 250)), solid((250, 0, 0))])
        with cf.ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(_infer, s, doc, None) for _ in range(6)]
            threading.Event().wait(0.5)  # all six are now inside the 1.5 s delay
            os.kill(s.pid, signal.SIGTERM)
            codes = [f.result().status_code for f in futures]
        proc = psutil.Process(s.pid) if psutil.pid_exists(s.pid) else None
        if proc is not None:
            proc.wait(timeout=20)  # grace period 10 s, plus the log flush
        assert codes == [200] * 6
        assert _logged_rows(log) == 12
        assert "inference log closed: 12 rows written, 0 dropped" in s.log_text()
