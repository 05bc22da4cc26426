"""Serving throughput with provenance on vs off, against the same bundle, in one run (issue 17).

Starts ``aidetect serve`` twice on the same bundle, once with ``AIDETECT_VERDICT__ENABLED=false`` (no
provenance read: the verdict comes from the detector alone) and once with the default policy (C2PA,
XMP, PNG text, EXIF; the watermark stays off as configured), and alternates saturated closed-loop rounds
of 512 px JPEGs from ``../shared/datasets/real-vs-ai-512-dev.parquet`` between them (A B A B ...), so
drifting machine load hits both alike; both are asked for the same outputs, verdict ones included.
Reports the median throughput and p50 latency of each and the drop. Also times ``read_provenance``
alone per image in-process (median), with and without the watermark decode.

    nice -n 5 .venv/bin/python bench/provenance_overhead.py --rounds 5 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from serving_load import Target, build_model_files, closed_loop, drain, start, stop  # noqa: E402

from aidetect.config import load  # noqa: E402
from aidetect.paths import shared_datasets  # noqa: E402
from aidetect.provenance import VerdictConfig, read_provenance  # noqa: E402
from aidetect.serving.client import build_image_request, free_port  # noqa: E402

OUTPUTS = ("probabilities", "label", "verdict", "verdict_reasons", "provenance")


class VerdictTarget(Target):
    """Asks for the verdict outputs too (both servers answer them; only one reads provenance)."""

    def request(self, image: bytes) -> tuple[str, bytes, dict[str, str]]:
        body, headers = build_image_request([image], outputs=OUTPUTS)
        return f"{self.url}/v2/models/{self.model}/infer", body, headers


def payloads(n: int) -> list[bytes]:
    import pyarrow.parquet as pq

    root = shared_datasets()
    if root is None:
        raise SystemExit("../shared/datasets is not present: the benchmark needs the 512 px images")
    table = pq.read_table(root / "real-vs-ai-512-dev.parquet", columns=["image"]).slice(0, n)
    return [row["bytes"] for row in table.column("image").to_pylist()]


def reader_cost_us(images: list[bytes], cfg: VerdictConfig, repeat: int = 3) -> float:
    """Median microseconds of ``read_provenance`` per image."""
    times = []
    for _ in range(repeat):
        for data in images:
            t = time.perf_counter()
            read_provenance(data, cfg)
            times.append(time.perf_counter() - t)
    return round(statistics.median(times) * 1e6, 1)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of the server process (all its threads)."""
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def c2pa_cost_us(image: bytes) -> float:
    """Median microseconds of ``read_provenance`` on one 512 px JPEG signed by a test CA (trusted)."""
    from tests.helpers.provenance import TestCA

    with tempfile.TemporaryDirectory() as tmp:
        ca = TestCA.create(Path(tmp))
        signed = ca.sign(image, "image/jpeg", "trainedAlgorithmicMedia")
        cfg = load(VerdictConfig, "verdict", overrides={"c2pa_trust_anchors": str(ca.anchors)})
        assert read_provenance(signed, cfg)[0].claims_ai
        return reader_cost_us([signed], cfg, repeat=20)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="measured rounds per server (alternating)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per round")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--arch", default="compact_l")
    ap.add_argument("--input-size", type=int, default=32)
    ap.add_argument("--checkpoint", default=None, help="a trained checkpoint instead of a fresh arch")
    ap.add_argument("--out", default=None, help="also write the summary JSON here")
    args = ap.parse_args()

    images = payloads(args.images)
    on_cfg = load(VerdictConfig, "verdict", overrides={"enabled": True})
    wm_cfg = load(VerdictConfig, "verdict", overrides={"enabled": True, "watermark_enabled": True})
    summary: dict[str, object] = {
        "images": len(images),
        "reader_us_median": reader_cost_us(images, on_cfg),
        "reader_with_watermark_us_median": reader_cost_us(images[:40], wm_cfg, repeat=1),
        "signals_found": sum(bool(read_provenance(d, on_cfg)) for d in images),
        "reader_c2pa_signed_us_median": c2pa_cost_us(images[0]),
    }
    print(json.dumps(summary), flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _, bundle = build_model_files(work, args.arch, args.input_size, args.checkpoint)
        servers = {}
        for name, enabled in (("provenance-off", "false"), ("provenance-on", "true")):
            port, grpc = free_port(), free_port()
            cmd = [sys.executable, "-m", "aidetect.cli", "serve", "--model", str(bundle)]
            cmd += ["--http-port", str(port), "--grpc-port", str(grpc)]
            url = f"http://127.0.0.1:{port}"
            proc = start(
                cmd, f"{url}/v2/health/ready", work / f"{name}.log", {"AIDETECT_VERDICT__ENABLED": enabled}
            )
            servers[name] = (VerdictTarget(name, url, "detector"), proc)
        try:
            rounds: dict[str, list[tuple[float, float, float]]] = {n: [] for n in servers}
            for target, _ in servers.values():  # warm-up, not measured
                asyncio.run(closed_loop(target, images[:50], 4, 2.0))
            for r in range(args.rounds):
                for name, (target, proc) in servers.items():
                    cpu0 = _cpu_seconds(proc.pid)
                    lat, errors, seconds = asyncio.run(
                        closed_loop(target, images, args.concurrency, args.duration)
                    )
                    ok = len(lat) - errors
                    rps = ok / seconds
                    p50 = statistics.median(lat) * 1000
                    cpu_ms = (_cpu_seconds(proc.pid) - cpu0) * 1000 / max(ok, 1)
                    rounds[name].append((rps, p50, cpu_ms))
                    row = {"round": r, "server": name, "rps": round(rps, 1), "p50_ms": round(p50, 2)}
                    row["server_cpu_ms_per_request"] = round(cpu_ms, 3)
                    print(json.dumps(row | {"errors": errors}), flush=True)
                    drain(target)
        finally:
            for _, proc in servers.values():
                stop(proc)
    med = {n: [statistics.median(x[k] for x in v) for k in range(3)] for n, v in rounds.items()}
    off, on = med["provenance-off"], med["provenance-on"]
    summary |= {
        "rps_off": round(off[0], 1),
        "rps_on": round(on[0], 1),
        "p50_ms_off": round(off[1], 2),
        "p50_ms_on": round(on[1], 2),
        "throughput_drop_pct": round(100 * (1 - on[0] / off[0]), 1),
        # load-independent view: server CPU per request (a saturated server's throughput is its inverse)
        "server_cpu_ms_per_request_off": round(off[2], 3),
        "server_cpu_ms_per_request_on": round(on[2], 3),
        "cpu_bound_drop_pct": round(100 * (1 - off[2] / on[2]), 1),
        "target_drop_pct": 15,
    }
    print(json.dumps(summary), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
