"""A forensic ``crops`` bundle end to end: demo data -> train (random crops) -> bundle -> ``aidetect serve``.

The same images score the same through the torch evaluation loop (crop grids, aggregated), the bundle's
ONNX graph as the drift reference scores it, and a real server over V2, whatever their size or shape.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from aidetect.data.crops import PreprocessSpec
from aidetect.data.demo import generate_demo
from aidetect.data.versions import ingest, open_version
from aidetect.serving.client import V2Client, build_image_request
from tests.helpers.serving import aidetect_serve, png_header_bomb

pytestmark = pytest.mark.slow  # trains, exports ONNX and starts a server (~1 min)
MODEL = "forensic"


def _encoded(w: int, h: int, fmt: str, seed: int) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    from aidetect.model.config import TrainConfig
    from aidetect.model.optimize import optimize
    from aidetect.model.train import train

    base = tmp_path_factory.mktemp("crops")
    root = str(base / "datasets")
    version = ingest(str(generate_demo(base / "demo", n_per_class=24, size=64)), root=root).version_id
    cfg = TrainConfig(
        arch="forensic_s",
        input_size=32,
        epochs=1,
        batch_size=16,
        track=False,
        progress=False,
        preprocess=PreprocessSpec(mode="crops", grid=2, max_crops=4, aggregate="mean"),
    )
    cfg.validate()
    train(cfg, open_version(version, root), base / "train")
    optimize(
        str(base / "train"),
        open_version(version, root),
        str(base / "bundle"),
        model_name=MODEL,
        variants=("fp32",),
    )
    return base, root


def _payload() -> list[bytes]:
    """Demo-sized, tiny (padded), strip-shaped (bounded) and non-square images, PNG and JPEG."""
    return [
        _encoded(64, 64, "PNG", 1),
        _encoded(10, 7, "PNG", 2),
        _encoded(3000, 1, "PNG", 3),
        _encoded(200, 50, "JPEG", 4),
        _encoded(96, 96, "JPEG", 5),
    ]


def test_bundle_states_its_preprocessing(bundle: tuple[Path, str]) -> None:
    spec = json.loads((bundle[0] / "bundle" / "bundle.json").read_text())
    assert spec["preprocess"] == {
        "mode": "crops",
        "crop": 32,
        "grid": 2,
        "max_crops": 4,
        "aggregate": "mean",
        "max_side": 4096,
    }


def test_training_onnx_and_server_agree_on_crops(bundle: tuple[Path, str]) -> None:
    from aidetect.model.checkpoint import load_checkpoint
    from aidetect.model.data import SplitData
    from aidetect.model.evaluate import predict
    from aidetect.monitoring.reference import BundleScorer

    base, _ = bundle
    images = _payload()
    model, meta = load_checkpoint(str(base / "train" / "model.pt"))
    rows = pd.DataFrame({"label": ["REAL"] * len(images)})
    torch_probs = predict(model, meta, SplitData(images, np.zeros(len(images), np.int64), rows), batch_size=8)
    onnx_probs = BundleScorer(str(base / "bundle")).predict(images)
    np.testing.assert_allclose(onnx_probs, torch_probs, atol=1e-4)
    with aidetect_serve(str(base / "bundle"), base) as (url, _grpc):
        served = V2Client(url).predict(MODEL, images)
        got = np.array([[p.probabilities["REAL"], p.probabilities["FAKE"]] for p in served], np.float32)
        np.testing.assert_allclose(got, torch_probs, atol=1e-4)
        assert [p.label for p in served] == ["FAKE" if p >= 0.5 else "REAL" for p in torch_probs[:, 1]]
        body, headers = build_image_request([png_header_bomb()])
        r = httpx.post(f"{url}/v2/models/{MODEL}/infer", content=body, headers=headers, timeout=30)
        assert r.status_code == 400 and "pixel" in r.text.lower()
