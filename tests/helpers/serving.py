"""Helpers for the serving tests: a tiny exported bundle and a running ``aidetect serve``."""

from __future__ import annotations

import contextlib
import io
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from tests.helpers import servers


def make_bundle(out_dir: Path, input_size: int = 32, seed: int = 0, name: str = "detector") -> Path:
    """Export a small randomly initialised network (build_model) into a serving bundle."""
    import torch

    from aidetect.data.imaging import IMAGENET_MEAN, IMAGENET_STD
    from aidetect.model.networks import build_model
    from aidetect.model.optimize import INPUT_NAME, OUTPUT_NAME, export_onnx
    from aidetect.serving.bundle import BundleSpec, write_bundle

    torch.manual_seed(seed)
    model = build_model("compact_s", 2, input_size).eval()
    with torch.no_grad():  # a non-trivial head so both classes occur
        model.fc.weight.mul_(20.0)
    onnx_path = export_onnx(model, input_size, out_dir.parent / f"{out_dir.name}.onnx")
    spec = BundleSpec(
        model_name=name,
        model_version="7",
        labels=["REAL", "FAKE"],
        positive_label="FAKE",
        input_size=input_size,
        mean=list(IMAGENET_MEAN),
        std=list(IMAGENET_STD),
        threshold=0.5,
        input_name=INPUT_NAME,
        output_name=OUTPUT_NAME,
        variant="fp32",
        dataset_version="test-dataset",
    )
    return write_bundle(out_dir, onnx_path.read_bytes(), spec)


def jpeg(size: int = 48, seed: int = 0, fmt: str = "JPEG") -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def png_header_bomb(width: int = 20000, height: int = 20000) -> bytes:
    """A tiny PNG whose header declares a huge image (the pixel guard must refuse it before decoding)."""
    img = Image.new("1", (width, height))
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


@contextlib.contextmanager
def aidetect_serve(
    bundle: str, workdir: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, str]]:
    """Run ``aidetect serve`` on free ports; yield (http base URL, grpc host:port)."""
    http, grpc = servers.free_port(), servers.free_port()
    cmd = [
        sys.executable, "-m", "aidetect.cli", "serve", "--model", bundle,
        "--http-port", str(http), "--grpc-port", str(grpc), *args,
    ]  # fmt: skip
    url = f"http://127.0.0.1:{http}"
    with servers.running(cmd, f"{url}/v2/health/ready", workdir / "serve.log", env=env, timeout=120):
        _wait_tcp(grpc)  # REST and gRPC start side by side: ready on REST does not mean gRPC listens
        yield url, f"127.0.0.1:{grpc}"


def _wait_tcp(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def tiny_bundle(
    out: Path,
    weights: list[list[float]] | None = None,
    threshold: float = 0.5,
    labels: tuple[str, ...] = ("REAL", "FAKE"),
    real_label: str | None = None,
) -> Path:
    """GlobalAveragePool -> Flatten -> Gemm: logits = W @ mean_rgb, built with onnx.helper (no torch).

    Pixels reach the graph as value / 255 (mean 0, std 1), so a solid colour sets the logits exactly.
    The binary default is an old-style bundle (``positive_label`` only, no ``real_label``)."""
    import onnx
    from onnx import TensorProto, helper

    from aidetect.serving.bundle import BundleSpec, write_bundle

    w = np.asarray(weights or [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], np.float32)  # REAL ~ red, FAKE ~ blue
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("Gemm", ["flat", "W"], ["logits"], transB=1),
        ],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(w)])],
        [helper.make_tensor("W", TensorProto.FLOAT, w.shape, w.flatten().tolist())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    spec = BundleSpec(
        model_name="tiny",
        model_version="3",
        labels=list(labels),
        positive_label="FAKE" if labels == ("REAL", "FAKE") and real_label is None else None,
        real_label=real_label,
        input_size=8,
        mean=[0.0, 0.0, 0.0],
        std=[1.0, 1.0, 1.0],
        threshold=threshold,
        variant="fp32",
        dataset_version="ds1",
    )
    onnx.checker.check_model(model)
    return write_bundle(out, model.SerializeToString(), spec)


def solid(rgb: tuple[int, int, int]) -> bytes:
    """A 16x12 PNG of one colour (the tiny bundle maps red to REAL and blue to FAKE)."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 12), rgb).save(buf, "PNG")
    return buf.getvalue()


THREE_CLASS = ("ai-generated", "real", "deepfake")  # the real label is not the first column
# solid colours whose probabilities put plain argmax and the decision rule (threshold 0.6) at odds:
# (ai .33, real .36, deepfake .31): argmax real, fake score .64 -> ai-generated;
# (ai .45, real .42, deepfake .13): argmax ai-generated, fake score .58 -> real
RULE_VS_ARGMAX = [(125, 127, 123), (133, 131, 101)]


def three_class_bundle(out: Path, threshold: float = 0.6) -> Path:
    """A three-class tiny bundle: logits = 10 * (r, g, b) / 255 for (ai-generated, real, deepfake)."""
    return tiny_bundle(out, (10 * np.eye(3)).tolist(), threshold, THREE_CLASS, real_label="real")


def three_class_images(n_random: int = 22, seed: int = 0) -> list[bytes]:
    """PNGs of the RULE_VS_ARGMAX colours, then ``n_random`` seeded random colours."""
    rng = np.random.default_rng(seed)
    colours = RULE_VS_ARGMAX + [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(n_random)]
    return [solid(c) for c in colours]
