"""The Grad-CAM explainer as its own KServe server process, on the ``:explain`` route."""

from __future__ import annotations

import base64
import io
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.helpers import servers


def _checkpoint(path: Path) -> Path:
    import torch

    from aidetect.data.imaging import IMAGENET_MEAN, IMAGENET_STD
    from aidetect.model.checkpoint import save_checkpoint
    from aidetect.model.networks import build_model

    torch.manual_seed(0)
    meta = {"arch": "compact_s", "num_classes": 2, "input_size": 32, "labels": ["REAL", "FAKE"]}
    meta |= {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "threshold": 0.5}
    save_checkpoint(str(path), build_model("compact_s", 2, 32), meta)
    return path


def _real_image(shared_datasets: Path) -> bytes:
    import pyarrow.parquet as pq

    table = pq.read_table(shared_datasets / "real-vs-ai-512-dev.parquet", columns=["image"]).slice(0, 1)
    return table.column("image").to_pylist()[0]["bytes"]


def test_explainer_returns_a_heatmap_for_a_real_image(tmp_path: Path, shared_datasets: Path) -> None:
    ckpt = _checkpoint(tmp_path / "model.pt")
    port = servers.free_port()
    cmd = [sys.executable, "-m", "aidetect.cli", "explain", "--serve", "--model", str(ckpt)]
    cmd += ["--name", "detector", "--http-port", str(port)]
    url = f"http://127.0.0.1:{port}"
    image = _real_image(shared_datasets)
    with servers.running(cmd, f"{url}/v2/health/ready", tmp_path / "explainer.log", timeout=120):
        body = {"instances": [{"image_bytes": {"b64": base64.b64encode(image).decode()}}]}
        r = httpx.post(f"{url}/v1/models/detector:explain", json=body, timeout=60)
        assert r.status_code == 200, r.text
        (exp,) = r.json()["explanations"]
        assert exp["label"] in {"REAL", "FAKE"} and exp["target"] == exp["label"]
        assert 0.0 <= exp["probability_fake"] <= 1.0
        assert abs(sum(exp["probabilities"].values()) - 1.0) < 1e-5
        png = Image.open(io.BytesIO(base64.b64decode(exp["heatmap_png_b64"])))
        assert png.format == "PNG" and png.size[0] >= 256
        pixels = np.asarray(png.convert("RGB"), dtype=np.float32)
        assert pixels.std() > 5  # an overlay, not a blank picture

        r = httpx.post(f"{url}/v1/models/detector:explain", json={"instances": ["%%%"]}, timeout=30)
        assert r.status_code == 400 and "instances[0]" in r.json()["error"]
        body = {"instances": [base64.b64encode(image).decode()], "target": "REAL"}
        r = httpx.post(f"{url}/v1/models/detector:explain", json=body, timeout=60)
        assert r.status_code == 200 and r.json()["explanations"][0]["target"] == "REAL"


def test_grad_cam_highlights_the_region_that_drives_the_logit() -> None:
    """Evidence only in the top-left quadrant of the input: the heatmap must peak there."""
    import torch
    from torch import nn

    from aidetect.model.explain import grad_cam

    class QuadrantNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 1, 1, bias=False)
            nn.init.constant_(self.conv.weight, 1.0)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            f = torch.relu(self.conv(x))
            score = f.mean(dim=(1, 2, 3))
            return torch.stack([-score, score], dim=1)

    x = torch.zeros(1, 3, 16, 16)
    x[:, :, :8, :8] = 1.0
    heat, probs = grad_cam(QuadrantNet(), x, target=1)
    assert heat.shape == (16, 16) and heat.min() >= 0.0 and heat.max() <= 1.0
    assert heat[:6, :6].mean() > 0.9 and heat[10:, 10:].mean() < 0.1
    assert probs.shape == (2,)


def test_explain_command_writes_heatmaps(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from aidetect.cli import main
    from tests.helpers.serving import jpeg

    ckpt = _checkpoint(tmp_path / "model.pt")
    img = tmp_path / "cat.jpg"
    img.write_bytes(jpeg(64))
    out = tmp_path / "heat"
    result = CliRunner().invoke(main, ["explain", "--model", str(ckpt), str(img), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert Image.open(out / "cat.gradcam.png").size == (256, 256)
    bad = CliRunner().invoke(main, ["explain", "--model", str(ckpt), str(img), "--target", "DOG"])
    assert bad.exit_code != 0 and "error:" in bad.output and "DOG" in bad.output


@pytest.mark.parametrize("payload", [{"instances": []}, {"nope": 1}, {"instances": [{"image_bytes": {}}]}])
def test_explainer_rejects_malformed_payloads(payload: dict) -> None:
    from aidetect.model.explain import decode_instances

    with pytest.raises(ValueError):
        decode_instances(payload, 1000)
