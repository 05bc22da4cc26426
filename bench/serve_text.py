"""Serving benchmark of a text bundle (issue 19): ``aidetect serve`` on loopback, KServe V2 JSON.

Payloads: 512-character texts from ``../shared/datasets/ai-text-l2r.parquet``. Scenarios (the request
machinery of ``bench/serving_load.py``):

- ``1text@<rate>rps``: open loop, one text per request at a fixed rate (latency from the scheduled send);
- ``<batch>texts-saturated``: closed loop, batches of texts per request, fixed concurrency (texts/s).

    nice -n 5 .venv/bin/python bench/serve_text.py --bundle /tmp/text-bench/tfidf_lr-bundle
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aidetect.serving.client import free_port  # noqa: E402
from bench.serving_load import Target, closed_loop, drain, open_loop, run_scenario, start, stop  # noqa: E402

DATA = REPO.parent / "shared" / "datasets" / "ai-text-l2r.parquet"


class TextTarget(Target):
    """Each payload is a ready V2 JSON body (one or more texts)."""

    def request(self, image: bytes) -> tuple[str, bytes, dict[str, str]]:
        return f"{self.url}/v2/models/{self.model}/infer", image, {"Content-Type": "application/json"}


def bodies(texts: list[str], per_request: int) -> list[bytes]:
    out = []
    for i in range(0, len(texts) - per_request + 1, per_request):
        chunk = texts[i : i + per_request]
        doc = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(chunk)], "data": chunk}]}
        out.append(json.dumps(doc).encode())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", required=True, help="text bundle folder (model.onnx + bundle.json)")
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--chars", type=int, default=512)
    ap.add_argument("--serve-args", default="", help="extra flags for aidetect serve")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    frame = pd.read_parquet(DATA, columns=["text"])
    texts = [t[: args.chars] for t in frame["text"] if len(t) >= args.chars][:2000]
    http = free_port()
    url = f"http://127.0.0.1:{http}"
    cmd = [sys.executable, "-m", "aidetect.cli", "serve", "--model", args.bundle, "--name", "text",
           "--http-port", str(http), "--no-grpc", "--max-batch", str(max(64, args.batch)),
           *args.serve_args.split()]  # fmt: skip
    log = Path(args.out or "/tmp/serve_text").with_suffix(".serve.log")
    proc = start(cmd, f"{url}/v2/health/ready", log, {})
    results = []
    try:
        target = TextTarget("aidetect-text", url, "text")
        singles, batches = bodies(texts, 1), bodies(texts, args.batch)
        asyncio.run(closed_loop(target, singles[:50], 4, 2.0))  # warm-up, not measured
        scenarios = [
            (f"1text@{args.rate:g}rps", lambda: open_loop(target, singles, args.rate, args.duration)),
            (
                f"{args.batch}texts-saturated",
                lambda: closed_loop(target, batches, args.concurrency, args.duration),
            ),
        ]
        for name, factory in scenarios:
            res = asdict(run_scenario(target, proc.pid, name, factory))
            if "saturated" in name:
                res["texts_per_s"] = round(res["throughput_rps"] * args.batch, 1)
            results.append(res)
            print(json.dumps(res), flush=True)
            drain(target)
    finally:
        stop(proc)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
