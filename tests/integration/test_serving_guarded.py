"""A bundle served from S3 with the inference log on S3, bearer tokens and a per-token rate limit."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import httpx
import pandas as pd
import pytest

from tests.helpers.serving import aidetect_serve, jpeg, make_bundle

MODEL = "detector"


def _infer(url: str, images: list[bytes], token: str | None) -> httpx.Response:
    from aidetect.serving.client import build_image_request

    body, headers = build_image_request(images)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(f"{url}/v2/models/{MODEL}/infer", content=body, headers=headers, timeout=30)


GRPC_SCRIPT = """
import sys
import numpy as np
import tritonclient.grpc as tg
from tritonclient.utils import InferenceServerException
from tests.helpers.serving import jpeg

url, token = sys.argv[1], sys.argv[2]
inp = tg.InferInput("image", [1], "BYTES")
inp.set_data_from_numpy(np.array([jpeg(40, 7)], dtype=np.object_))
headers = {"authorization": f"Bearer {token}"} if token else None
try:
    tg.InferenceServerClient(url).infer("detector", [inp], headers=headers)
    print("OK")
except InferenceServerException as exc:
    print(exc.status())
"""


def _grpc_status(url: str, token: str | None) -> str:
    """tritonclient gRPC in its own process (its protos clash with KServe's in one process)."""
    proc = subprocess.run(
        [sys.executable, "-c", GRPC_SCRIPT, url, token or ""],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip().splitlines()[-1]


def test_s3_bundle_s3_inference_log_auth_and_rate_limit(s3_env: str, tmp_path: Path) -> None:
    from aidetect import storage
    from aidetect.data.features import FEATURE_COLUMNS

    storage.s3_client().create_bucket(Bucket="models")
    bundle = make_bundle(tmp_path / "bundle", name=MODEL)
    storage.publish_dir(bundle, "s3://models/detector/7", marker="bundle.json")
    env = {
        "AIDETECT_SERVE_TOKENS": "tok-a, tok-b",
        "AIDETECT_SERVING__AUTH_REQUIRED": "true",
        "AIDETECT_SERVING__RATE_LIMIT_PER_SECOND": "0.1",
        "AIDETECT_SERVING__RATE_LIMIT_BURST": "4",
        "AIDETECT_SERVING__INFERENCE_LOG_FLUSH_ROWS": "1000",
        "AIDETECT_SERVING__INFERENCE_LOG_FLUSH_SECONDS": "600",
    }
    log_root = "s3://models/inference-log"
    with aidetect_serve("s3://models/detector/7", tmp_path, "--inference-log", log_root, env=env) as (
        url,
        grpc,
    ):
        # health and metadata stay open
        assert httpx.get(f"{url}/v2/health/ready").status_code == 200
        assert httpx.get(f"{url}/v2/models/{MODEL}").status_code == 200
        assert httpx.get(f"{url}/metrics").status_code == 200
        # no token / wrong token: 401, nothing predicted
        r = _infer(url, [jpeg(40)], None)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert _infer(url, [jpeg(40)], "tok-x").status_code == 401
        # tok-a: 2 requests, 5 images in all -> 5 log rows
        assert _infer(url, [jpeg(40, 1), jpeg(48, 2)], "tok-a").status_code == 200
        assert _infer(url, [jpeg(40, 3), jpeg(64, 4), jpeg(32, 5)], "tok-a").status_code == 200
        # tok-b: burst of 4, then 429 with Retry-After; tok-a is unaffected by tok-b's limit
        codes = [_infer(url, [b"not an image"], "tok-b").status_code for _ in range(6)]
        assert codes[:4] == [400] * 4 and codes[4:] == [429, 429]
        r = _infer(url, [jpeg(40)], "tok-b")
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert _infer(url, [jpeg(40, 6)], "tok-a").status_code == 200  # 6th logged row
        metrics = httpx.get(f"{url}/metrics").text
        assert 'aidetect_rejected_inputs_total{model="detector",reason="rate_limited"} 3.0' in metrics
        assert 'aidetect_rejected_inputs_total{model="detector",reason="unauthorized"} 2.0' in metrics
        assert _grpc_status(grpc, None) == "StatusCode.UNAUTHENTICATED"
        assert _grpc_status(grpc, "tok-a") == "OK"  # 7th logged row
        assert storage.list_uris(log_root, ".parquet") == []  # buffered: nothing written yet
    # shutdown flushed the buffer
    files = storage.list_uris(log_root, ".parquet")
    assert files and all(f.startswith(f"{log_root}/{MODEL}/date=") for f in files)
    rows = pd.concat([pd.read_parquet(io.BytesIO(storage.read_bytes(f))) for f in files])
    assert len(rows) == 7  # one row per predicted image, refused ones not logged
    expected = {"ts", "model_name", "model_version", "label", "probability_fake", "p_REAL", "p_FAKE"}
    assert expected | set(FEATURE_COLUMNS) <= set(rows.columns)
    assert set(rows["model_version"]) == {"7"} and set(rows["label"]) <= {"REAL", "FAKE"}
    assert sorted(rows["width"].astype(int)) == [32, 40, 40, 40, 40, 48, 64]  # features of the images sent
    assert ((rows["p_REAL"] + rows["p_FAKE"] - 1).abs() < 1e-5).all()
    assert (rows["probability_fake"] == rows["p_FAKE"]).all()


def test_inference_log_writes_one_row_per_prediction_without_blocking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    import numpy as np
    from PIL import Image

    from aidetect import storage
    from aidetect.decision import DecisionSpec
    from aidetect.serving.inference_log import InferenceLog, LoggedBatch

    # The store hangs until released: every submit below happens while the writer is stuck in a flush.
    release, writing = threading.Event(), threading.Event()
    real_write = storage.write_bytes

    def stuck_write(uri: str, data: bytes) -> None:
        writing.set()
        assert release.wait(30), "the test never released the store"
        real_write(uri, data)

    monkeypatch.setattr(storage, "write_bytes", stuck_write)
    rule = DecisionSpec(("REAL", "FAKE"), "REAL")
    log = InferenceLog(str(tmp_path / "log"), "m", "3", rule, flush_rows=4, flush_seconds=60)
    img = Image.fromarray(np.zeros((20, 30, 3), np.uint8))
    probs = np.array([[0.9, 0.1], [0.2, 0.8]], np.float32)

    def batch() -> LoggedBatch:
        now = pd.Timestamp.now(tz="UTC").to_pydatetime()
        return LoggedBatch(now, [img, img], [None, None], probs)

    assert log.submit(batch()) and log.submit(batch())  # 4 rows: the writer starts a flush
    assert writing.wait(30)
    for _ in range(3):
        assert log.submit(batch())  # accepted although the writer is blocked
    assert log.written_rows == 0 and not release.is_set()
    release.set()
    log.close()
    files = sorted((tmp_path / "log" / "m").rglob("*.parquet"))
    rows = pd.concat([pd.read_parquet(f) for f in files])
    assert len(rows) == 10 and log.written_rows == 10 and log.dropped == 0
    assert len(files) >= 2  # flushed at 4+ rows and again on close
    assert list(rows["label"][:2]) == ["REAL", "FAKE"] and rows["p_FAKE"].iloc[1] == pytest.approx(0.8)


def test_inference_log_drops_and_counts_when_the_queue_is_full(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from aidetect.decision import DecisionSpec
    from aidetect.serving.inference_log import InferenceLog, LoggedBatch

    log = InferenceLog(str(tmp_path / "log"), "m", "3", DecisionSpec(("REAL", "FAKE"), "REAL"), queue_size=1)
    img = Image.fromarray(np.zeros((8, 8, 3), np.uint8))
    batch = LoggedBatch(pd.Timestamp.now(tz="UTC").to_pydatetime(), [img] * 50, [None] * 50,
                        np.tile(np.array([[0.6, 0.4]], np.float32), (50, 1)))  # fmt: skip
    accepted = sum(log.submit(batch) for _ in range(200))
    log.close()
    assert accepted < 200 and log.dropped == (200 - accepted) * 50
    assert log.written_rows == accepted * 50
