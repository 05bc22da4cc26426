"""The explainer behind the predictor's guard: bearer tokens, the JSON body limit, a request-wide pixel
budget (a real ``aidetect explain --serve`` process)."""

from __future__ import annotations

import base64
import io
import sys
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.helpers import servers
from tests.integration.test_explain_server import _checkpoint

pytestmark = pytest.mark.slow  # torch checkpoint, a real server
TOKEN = "explain-t0ken"


def _b64_png(w: int, h: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (30, 120, 200)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_explainer_needs_a_token_and_bounds_body_and_pixels(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path / "model.pt")
    port = servers.free_port()
    cmd = [sys.executable, "-m", "aidetect.cli", "explain", "--serve", "--model", str(ckpt)]
    cmd += ["--name", "detector", "--http-port", str(port), "--max-image-pixels", "100000"]
    env = {
        "AIDETECT_SERVING__AUTH_REQUIRED": "true",
        "AIDETECT_SERVE_TOKENS": TOKEN,
        "AIDETECT_SERVING__MAX_JSON_BYTES": "200000",
    }
    url = f"http://127.0.0.1:{port}"
    route = f"{url}/v1/models/detector:explain"
    auth = {"authorization": f"Bearer {TOKEN}"}
    one = {"instances": [_b64_png(40, 40)]}
    with servers.running(cmd, f"{url}/v2/health/ready", tmp_path / "explainer.log", env=env, timeout=120):
        assert httpx.post(route, json=one, timeout=60).status_code == 401
        assert (
            httpx.post(route, json=one, headers={"authorization": "Bearer nope"}, timeout=60).status_code
            == 401
        )
        big = {"instances": ["A" * 300_000]}
        assert httpx.post(route, json=big, headers=auth, timeout=60).status_code == 413
        many = {"instances": [_b64_png(200, 200)] * 3}  # 40,000 px each, 120,000 in all: over the budget
        r = httpx.post(route, json=many, headers=auth, timeout=60)
        assert r.status_code == 400 and "above the limit 100000" in r.json()["error"]
        r = httpx.post(route, json=one, headers=auth, timeout=60)
        assert r.status_code == 200 and len(r.json()["explanations"]) == 1
