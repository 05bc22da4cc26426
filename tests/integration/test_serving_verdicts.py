"""Provenance verdicts from a real ``aidetect serve``, over REST and gRPC with tritonclient.

Every fixture is made here (tests/helpers/provenance.py): a C2PA manifest signed by a test CA (trusted
AI claim, trusted capture claim, tampered, expired), XMP digital source type, PNG generation parameters,
EXIF Software, the DWT-DCT watermark, an XMP bomb; an image without signals gets the detector's verdict.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest
import tritonclient.http as th

from tests.helpers import provenance as fx
from tests.helpers.serving import aidetect_serve, make_bundle

MODEL = "detector"
REPO = Path(__file__).resolve().parents[2]
OUTPUTS = ("verdict", "verdict_reasons", "provenance", "probability_fake")
DETECTOR = "detector"  # expected verdict: whatever the detector says (likely-ai or unknown)

# name -> (expected verdict, first reason starts with, provenance kind, its status)
EXPECTED = {
    "c2pa-ai": ("ai-generated", "c2pa trusted", "c2pa", "trusted"),
    "c2pa-capture": ("camera-capture", "c2pa trusted", "c2pa", "trusted"),
    "c2pa-tampered": (DETECTOR, "detector:", "c2pa", "invalid"),
    "c2pa-expired": (DETECTOR, "detector:", "c2pa", "expired"),
    "xmp": ("ai-generated", "iptc found", "iptc", "found"),
    "png-parameters": ("ai-generated", "png-parameters found", "png-parameters", "found"),
    "exif-software": ("ai-generated", "exif-software found", "exif-software", "found"),
    "watermark": ("ai-generated", "watermark found", "watermark", "found"),
    "xmp-bomb": (DETECTOR, "detector:", "iptc", "unreadable"),
    "plain": (DETECTOR, "detector:", None, None),
}


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], Path]:
    folder = tmp_path_factory.mktemp("provenance")
    ca = fx.TestCA.create(folder)
    expiring = ca.sign(fx.plain_image(seed=4), "image/jpeg", "trainedAlgorithmicMedia", expires_in_s=1)
    data = {
        "c2pa-ai": ca.sign(fx.plain_image(seed=1), "image/jpeg", "trainedAlgorithmicMedia"),
        "c2pa-capture": ca.sign(fx.plain_image(seed=2, fmt="PNG"), "image/png", "digitalCapture"),
        "c2pa-tampered": fx.tamper(ca.sign(fx.plain_image(seed=3), "image/jpeg", "digitalCapture")),
        "c2pa-expired": expiring,
        "xmp": fx.jpeg_with_xmp(fx.xmp_packet("trainedAlgorithmicMedia")),
        "png-parameters": fx.png_with_text({"parameters": fx.A1111_PARAMETERS}),
        "exif-software": fx.jpeg_with_software("Stable Diffusion XL"),
        "watermark": fx.watermarked_png(),
        "xmp-bomb": fx.jpeg_with_xmp(fx.xmp_bomb()),
        "plain": fx.plain_image(320, seed=5),  # large enough for the watermark decode to run
    }
    fx.wait_past(1)
    paths = {}
    for name, content in data.items():
        paths[name] = folder / name
        paths[name].write_bytes(content)
    return paths, ca.anchors


@pytest.fixture(scope="module")
def server(fixtures, tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("serve")
    bundle = make_bundle(work / "bundle", name=MODEL)
    env = {
        "AIDETECT_VERDICT__C2PA_TRUST_ANCHORS": str(fixtures[1]),
        "AIDETECT_VERDICT__WATERMARK_ENABLED": "true",
        "AIDETECT_SERVING__INFERENCE_LOG_FLUSH_ROWS": "1",  # every batch reaches the log at once
    }
    log_root = work / "inference-log"
    args = ("--inference-log", str(log_root))
    with aidetect_serve(str(bundle), work, *args, env=env) as urls:
        yield urls, log_root


def _rest(url: str, files: list[Path]) -> dict[str, list]:
    client = th.InferenceServerClient(url.removeprefix("http://"))
    inp = th.InferInput("image", [len(files)], "BYTES")
    inp.set_data_from_numpy(np.array([f.read_bytes() for f in files], dtype=np.object_), binary_data=True)
    res = client.infer(MODEL, [inp], outputs=[th.InferRequestedOutput(n, binary_data=False) for n in OUTPUTS])
    out = {}
    for name in OUTPUTS:
        out[name] = [v.decode() if isinstance(v, bytes) else v for v in res.as_numpy(name).tolist()]
    return out


def _grpc(grpc_url: str, files: list[Path]) -> dict[str, list]:
    cmd = [sys.executable, "-m", "tests.helpers.grpc_verdicts", grpc_url, MODEL, *map(str, files)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"verdict", "verdict_reasons", "provenance"} <= set(out["declared"])
    return out


def _check(names: list[str], out: dict[str, list]) -> None:
    for i, name in enumerate(names):
        want, first_reason, kind, status = EXPECTED[name]
        p_fake = float(out["probability_fake"][i])
        if want == DETECTOR:
            want = "likely-ai" if p_fake >= 0.5 else "unknown"
        reasons = json.loads(out["verdict_reasons"][i])
        signals = json.loads(out["provenance"][i])
        assert out["verdict"][i] == want, (name, reasons, signals)
        assert reasons[0].startswith(first_reason), (name, reasons)
        if kind is None:
            assert signals == [], name
        else:
            (sig,) = [s for s in signals if s["kind"] == kind]
            assert sig["detail"]["status"] == status, (name, sig)
            assert sig["claims_ai"] == (want == "ai-generated"), (name, sig)


def test_each_fixture_gets_its_verdict_over_rest_and_grpc(server, fixtures) -> None:
    (url, grpc_url), _ = server
    names = list(EXPECTED)
    files = [fixtures[0][n] for n in names]
    _check(names, _rest(url, files))
    _check(names, _grpc(grpc_url, files))


def test_pixels_input_gets_the_detectors_verdict(server) -> None:
    (url, _), _ = server
    client = th.InferenceServerClient(url.removeprefix("http://"))
    inp = th.InferInput("pixels", [1, 40, 40, 3], "UINT8")
    inp.set_data_from_numpy(np.full((1, 40, 40, 3), 90, np.uint8))
    res = client.infer(MODEL, [inp], outputs=[th.InferRequestedOutput(n, binary_data=False) for n in OUTPUTS])
    reasons = json.loads(res.as_numpy("verdict_reasons")[0])
    assert res.as_numpy("verdict")[0] in (b"likely-ai", b"unknown", "likely-ai", "unknown")
    assert "provenance not read" in reasons[-1]


def test_metadata_metrics_log_and_predict_show_verdicts(server, fixtures, tmp_path: Path) -> None:
    (url, _), log_root = server
    files = fixtures[0]
    _rest(url, [files["png-parameters"], files["plain"]])
    meta = httpx.get(f"{url}/v2/models/{MODEL}").json()
    assert {"verdict", "verdict_reasons", "provenance"} <= {o["name"] for o in meta["outputs"]}
    text = httpx.get(f"{url}/metrics").text
    assert 'aidetect_verdicts_total{model="detector",verdict="ai-generated"}' in text

    from click.testing import CliRunner

    from aidetect.cli import main

    result = CliRunner().invoke(main, ["predict", str(files["exif-software"]), "--url", url])
    assert result.exit_code == 0, result.output
    assert "ai-generated" in result.output and "exif-software" in result.output

    deadline = time.monotonic() + 60  # the log flushes on its own schedule; poll for the file
    while not list(log_root.rglob("*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.5)
    rows = pq.read_table(list(log_root.rglob("*.parquet"))).to_pylist()
    assert {"verdict", "provenance"} <= set(rows[0])
    assert "ai-generated" in {r["verdict"] for r in rows}
