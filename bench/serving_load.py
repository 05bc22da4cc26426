"""Serving load benchmark: ``aidetect serve`` (ONNX, KServe V2) vs FastAPI + torch eager, on loopback.

Payloads: 32 px CIFAKE JPEGs and 512 px JPEGs from ``../shared/datasets``. Scenarios per server:

- ``512px@<rate>rps``: open loop at a fixed request rate (latency measured from the scheduled send time,
  so a stalled server cannot hide queueing delay);
- ``32px-saturated`` and ``512px-saturated``: closed loop with fixed concurrency (throughput).

One image per request for both servers (V2 binary tensor extension for ours, the raw body for the
baseline). Reports throughput, p50/p95/p99, error rate, server CPU (cores used) and peak RSS, then the
ratios. Usage::

    .venv/bin/python bench/serving_load.py --duration 30 --out bench/results/serving.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aidetect.paths import shared_datasets  # noqa: E402
from aidetect.serving.client import build_image_request, free_port, wait_ready  # noqa: E402


@dataclass
class Result:
    server: str
    scenario: str
    requests: int
    errors: int
    seconds: float
    throughput_rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    cpu_cores: float
    peak_rss_mb: float


def load_payloads(n: int) -> dict[str, list[bytes]]:
    root = shared_datasets()
    if root is None:
        raise SystemExit("../shared/datasets is not present: the benchmark needs the real payloads")
    small: list[bytes] = []
    with zipfile.ZipFile(root / "cifake-train.zip") as zf:
        names = [x for x in zf.namelist() if x.endswith(".jpg")]
        for cls in ("REAL", "FAKE"):
            picked = [x for x in names if f"/{cls}/" in x][: n // 2]
            small += [zf.read(x) for x in picked]
    import pyarrow.parquet as pq

    table = pq.read_table(root / "real-vs-ai-512-dev.parquet", columns=["image"]).slice(0, n)
    large = [row["bytes"] for row in table.column("image").to_pylist()]
    return {"32px": small, "512px": large}


class ResourceSampler:
    """CPU time and peak RSS of a server process (and its children) while a scenario runs."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _procs(self) -> list[psutil.Process]:
        return [self.proc, *self.proc.children(recursive=True)]

    def _cpu(self) -> float:
        total = 0.0
        for p in self._procs():
            with contextlib.suppress(psutil.NoSuchProcess):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = 0
            for p in self._procs():
                with contextlib.suppress(psutil.NoSuchProcess):
                    rss += p.memory_info().rss
            self.peak = max(self.peak, rss)
            self._stop.wait(0.25)

    def __enter__(self) -> ResourceSampler:
        self.cpu0, self.t0 = self._cpu(), time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.cores = (self._cpu() - self.cpu0) / (time.perf_counter() - self.t0)


class Target:
    def __init__(self, name: str, url: str, model: str | None) -> None:
        self.name, self.url, self.model = name, url, model
        self.health = f"{url}/v2/health/ready" if model else f"{url}/health"

    def request(self, image: bytes) -> tuple[str, bytes, dict[str, str]]:
        if self.model:
            body, headers = build_image_request([image])
            return f"{self.url}/v2/models/{self.model}/infer", body, headers
        return f"{self.url}/predict", image, {"Content-Type": "application/octet-stream"}


async def _one(session: aiohttp.ClientSession, target: Target, image: bytes) -> bool:
    url, body, headers = target.request(image)
    try:
        async with session.post(url, data=body, headers=headers) as resp:
            await resp.read()
            return resp.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def closed_loop(target: Target, images: list[bytes], concurrency: int, duration: float) -> tuple:
    lat: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def worker(k: int) -> None:
            nonlocal errors
            i = k
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                ok = await _one(session, target, images[i % len(images)])
                lat.append(time.perf_counter() - t)
                errors += not ok
                i += concurrency

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        return lat, errors, time.perf_counter() - t0


async def open_loop(target: Target, images: list[bytes], rate: float, duration: float) -> tuple:
    lat: list[float] = []
    errors = 0
    n = int(rate * duration)
    conn = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=30)) as session:
        t0 = time.perf_counter()

        async def fire(i: int) -> None:
            nonlocal errors
            scheduled = t0 + i / rate
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            ok = await _one(session, target, images[i % len(images)])
            lat.append(time.perf_counter() - scheduled)
            errors += not ok

        await asyncio.gather(*(fire(i) for i in range(n)))
        return lat, errors, time.perf_counter() - t0


def run_scenario(target: Target, pid: int, scenario: str, coro_factory) -> Result:
    # warm-up outside the measurement
    with ResourceSampler(pid) as res:
        lat, errors, seconds = asyncio.run(coro_factory())
    ms = np.array(lat) * 1000.0 if lat else np.array([float("nan")])
    return Result(
        server=target.name,
        scenario=scenario,
        requests=len(lat),
        errors=errors,
        seconds=round(seconds, 2),
        throughput_rps=round((len(lat) - errors) / seconds, 1),
        p50_ms=round(float(np.percentile(ms, 50)), 2),
        p95_ms=round(float(np.percentile(ms, 95)), 2),
        p99_ms=round(float(np.percentile(ms, 99)), 2),
        cpu_cores=round(res.cores, 2),
        peak_rss_mb=round(res.peak / 2**20, 1),
    )


def drain(target: Target, timeout: float = 180.0) -> float:
    """Wait until the server answers its health route quickly again (a backlog from an overload is served)."""
    import httpx

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        t = time.perf_counter()
        try:
            httpx.get(target.health, timeout=5.0)
            if time.perf_counter() - t < 0.5:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return time.perf_counter() - t0


def bench_server(
    target: Target, pid: int, payloads: dict[str, list[bytes]], args: argparse.Namespace
) -> list[Result]:
    asyncio.run(closed_loop(target, payloads["32px"][:50], 4, 2.0))  # warm-up, not measured
    scenarios = [
        (f"512px@{args.rate:g}rps", lambda: open_loop(target, payloads["512px"], args.rate, args.duration)),
        ("32px-saturated", lambda: closed_loop(target, payloads["32px"], args.concurrency, args.duration)),
        ("512px-saturated", lambda: closed_loop(target, payloads["512px"], args.concurrency, args.duration)),
    ]
    out = []
    for name, factory in scenarios:
        out.append(run_scenario(target, pid, name, factory))
        print(json.dumps(asdict(out[-1])), flush=True)
        waited = drain(target)  # each scenario starts on an idle server
        if waited > 1:
            print(f"# {target.name}: drained a backlog for {waited:.1f} s after {name}", flush=True)
    return out


def build_model_files(work: Path, arch: str, input_size: int, checkpoint: str | None) -> tuple[Path, Path]:
    """A checkpoint (given, or a freshly initialised ``arch``) and the bundle exported from it."""
    import torch

    from aidetect.data.imaging import IMAGENET_MEAN, IMAGENET_STD
    from aidetect.model.checkpoint import load_checkpoint, save_checkpoint
    from aidetect.model.networks import build_model
    from aidetect.model.optimize import INPUT_NAME, OUTPUT_NAME, export_onnx
    from aidetect.serving.bundle import BundleSpec, write_bundle

    if checkpoint is None:
        torch.manual_seed(0)
        meta = {
            "arch": arch,
            "num_classes": 2,
            "input_size": input_size,
            "labels": ["REAL", "FAKE"],
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
            "threshold": 0.5,
        }
        checkpoint = str(work / "model.pt")
        save_checkpoint(checkpoint, build_model(arch, 2, input_size), meta)
    model, meta = load_checkpoint(checkpoint)
    onnx = export_onnx(model, int(meta["input_size"]), work / "model.onnx")
    spec = BundleSpec(
        model_name="detector",
        model_version="bench",
        labels=list(meta["labels"]),
        positive_label="FAKE",
        input_size=int(meta["input_size"]),
        mean=list(meta["mean"]),
        std=list(meta["std"]),
        threshold=float(meta.get("threshold", 0.5)),
        input_name=INPUT_NAME,
        output_name=OUTPUT_NAME,
        variant="fp32",
        dataset_version=str(meta.get("dataset_version", "")),
    )
    return Path(checkpoint), write_bundle(work / "bundle", onnx.read_bytes(), spec)


def start(cmd: list[str], url: str, log: Path, env: dict[str, str]) -> subprocess.Popen:
    fh = open(log, "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, **env})
    wait_ready(url, proc, 180, log=log, ready=lambda status: status < 500)
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=30.0, help="seconds per scenario")
    ap.add_argument("--rate", type=float, default=50.0, help="requests/s of the open-loop 512 px scenario")
    ap.add_argument(
        "--concurrency", type=int, default=16, help="in-flight requests of the saturated scenarios"
    )
    ap.add_argument("--images", type=int, default=200, help="distinct payload images per size")
    ap.add_argument("--arch", default="compact", help="architecture when no checkpoint is given")
    ap.add_argument("--input-size", type=int, default=32)
    ap.add_argument("--checkpoint", default=None, help="benchmark this checkpoint instead of a fresh model")
    ap.add_argument(
        "--bundle",
        default=None,
        help="serve this bundle (what `aidetect optimize` chose) instead of an fp32 export of the checkpoint",
    )
    ap.add_argument("--serve-args", default="", help="extra flags for aidetect serve, e.g. '--threads 1'")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument(
        "--baseline-threads",
        type=int,
        default=1,
        help="torch threads of the baseline (1: its best setting on a shared 2-core box; 0: torch default)",
    )
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args()

    payloads = load_payloads(args.images)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="aidetect-bench-") as tmp:
        work = Path(tmp)
        checkpoint, bundle = build_model_files(work, args.arch, args.input_size, args.checkpoint)
        bundle = Path(args.bundle) if args.bundle else bundle
        port = free_port()
        ours = start(
            [sys.executable, "-m", "aidetect.cli", "serve", "--model", str(bundle), "--http-port", str(port),
             "--grpc-port", str(free_port()), "--name", "detector", *args.serve_args.split()],
            f"http://127.0.0.1:{port}/v2/health/ready", work / "serve.log", {},
        )  # fmt: skip
        try:
            results += bench_server(
                Target("aidetect-onnx", f"http://127.0.0.1:{port}", "detector"), ours.pid, payloads, args
            )
        finally:
            stop(ours)
        if not args.skip_baseline:
            port = free_port()
            base = start(
                [sys.executable, "-m", "uvicorn", "bench.serving_baseline:app", "--host", "127.0.0.1",
                 "--port", str(port), "--log-level", "warning"],
                f"http://127.0.0.1:{port}/health", work / "baseline.log",
                {"AIDETECT_BASELINE_CHECKPOINT": str(checkpoint), "PYTHONPATH": str(REPO),
                 "AIDETECT_BASELINE_THREADS": str(args.baseline_threads)},
            )  # fmt: skip
            try:
                results += bench_server(
                    Target("fastapi-torch-eager", f"http://127.0.0.1:{port}", None), base.pid, payloads, args
                )
            finally:
                stop(base)

    report(results, args)


def report(results: list[Result], args: argparse.Namespace) -> None:
    """Print the table and the ours/baseline ratios; write JSON when ``--out`` is given."""
    cols = ("server", "scenario", "req", "err", "rps", "p50", "p95", "p99", "cpu", "rss MB")
    print("\n{:<20} {:<16} {:>6} {:>4} {:>7} {:>7} {:>7} {:>7} {:>5} {:>7}".format(*cols))
    for r in results:
        print(
            f"{r.server:<20} {r.scenario:<16} {r.requests:>6} {r.errors:>4} {r.throughput_rps:>7.1f} "
            f"{r.p50_ms:>7.2f} {r.p95_ms:>7.2f} {r.p99_ms:>7.2f} {r.cpu_cores:>5.2f} {r.peak_rss_mb:>7.1f}"
        )
    ratios = {}
    by = {(r.server, r.scenario): r for r in results}
    for scen in sorted({r.scenario for r in results}):
        a, b = by.get(("aidetect-onnx", scen)), by.get(("fastapi-torch-eager", scen))
        if a and b and b.throughput_rps > 0:
            tput = round(a.throughput_rps / b.throughput_rps, 2)
            p95 = round(b.p95_ms / a.p95_ms, 2) if a.p95_ms else None
            ratios[scen] = {"throughput_ratio": tput, "p95_ratio_baseline_over_ours": p95}
            print(f"ratio {scen}: throughput x{tput}, p95 baseline/ours x{p95}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        doc = {"args": vars(args), "cpu_count": os.cpu_count(), "load_avg_at_end": os.getloadavg()}
        doc |= {"results": [asdict(r) for r in results], "ratios": ratios}
        Path(args.out).write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
