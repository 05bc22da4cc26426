"""The capture in a real ``aidetect serve``: kept images and their log rows survive SIGTERM, and a store
that cannot be reached costs a counted drop, never a failed request."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path

import httpx
import psutil
import pyarrow.parquet as pq
import pytest

from aidetect.serving.client import build_image_request
from tests.helpers.edge import environ, post_json, serve
from tests.helpers.serving import solid, tiny_bundle

pytestmark = pytest.mark.slow  # real servers


def _infer(url: str, images: list[bytes]) -> httpx.Response:
    body, headers = build_image_request(images)
    return httpx.post(f"{url}/v2/models/tiny/infer", content=body, headers=headers, timeout=60)


def test_sigterm_flushes_kept_images_and_their_log_rows(tmp_path: Path) -> None:
    store, log = tmp_path / "store", tmp_path / "log"
    env = {
        **environ(inference_log_uri=log, inference_log_flush_seconds=3600, track="canary"),
        "AIDETECT_FEEDBACK__CAPTURE__STORE_URI": str(store),
        "AIDETECT_FEEDBACK__CAPTURE__SAMPLE_RATE": "1.0",
    }
    images = [solid((i * 40, 0, 255 - i * 40)) for i in range(4)]
    with serve(tiny_bundle(tmp_path / "tiny"), tmp_path, env) as s:
        assert _infer(s.url, images[:3]).status_code == 200
        assert _infer(s.url, images[3:]).status_code == 200
        pixels = {
            "inputs": [{"name": "pixels", "datatype": "UINT8", "shape": [1, 8, 8, 3], "data": [0] * 192}]
        }
        assert post_json(f"{s.url}/v2/models/tiny/infer", pixels).status_code == 200
        os.kill(s.pid, signal.SIGTERM)
        if psutil.pid_exists(s.pid):
            psutil.Process(s.pid).wait(timeout=30)
        text = s.log_text()
    shas = [hashlib.sha256(b).hexdigest() for b in images]
    for sha, data in zip(shas, images, strict=True):
        assert (store / sha[:2] / sha).read_bytes() == data
    rows = [r for f in sorted(log.rglob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert sorted((r["sha256"], r["kept"], r["track"]) for r in rows) == sorted(
        [(sha, True, "canary") for sha in shas] + [("", False, "canary")]
    )
    assert "capture closed: 4 images kept, dropped none" in text
    assert "inference log closed: 5 rows written, 0 dropped" in text


def _metric(url: str, name: str, labels: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(f"{name}{{") and labels in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_an_unreachable_store_is_a_counted_drop_not_a_failed_request(
    s3_unreachable: str, tmp_path: Path
) -> None:
    env = {
        "AIDETECT_FEEDBACK__CAPTURE__STORE_URI": "s3://nowhere/captured",
        "AIDETECT_FEEDBACK__CAPTURE__SAMPLE_RATE": "1",
    }
    with serve(tiny_bundle(tmp_path / "tiny"), tmp_path, env) as s:
        for i in range(3):
            r = _infer(s.url, [solid((i, 0, 200))])
            assert r.status_code == 200 and r.json()["outputs"][1]["data"] == ["FAKE"]
        dropped = 0.0
        for _ in range(300):  # the writer tries (connect timeout 1 s), fails, drops and counts
            dropped = _metric(s.url, "aidetect_capture_dropped_total", 'reason="store_error"')
            if dropped >= 3:
                break
            time.sleep(0.1)
        assert dropped == 3
        assert _metric(s.url, "aidetect_captured_total", 'model="tiny"') == 0
        assert _infer(s.url, [solid((9, 9, 9))]).status_code == 200
