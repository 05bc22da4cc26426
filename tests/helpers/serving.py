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


def tiny_bundle(out: Path, weights: list[list[float]] | None = None, threshold: float = 0.5) -> Path:
    """GlobalAveragePool -> Flatten -> Gemm: logits = W @ mean_rgb, built with onnx.helper (no torch)."""
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
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor("W", TensorProto.FLOAT, w.shape, w.flatten().tolist())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    spec = BundleSpec(
        model_name="tiny",
        model_version="3",
        labels=["REAL", "FAKE"],
        positive_label="FAKE",
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
