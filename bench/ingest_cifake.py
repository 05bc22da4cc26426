"""Benchmark: ingest and validate the 100,000-image CIFAKE zip (targets: ingest < 60 s with peak memory
< 1 GiB on 2 cores, validation < 30 s).

    .venv/bin/python bench/ingest_cifake.py [--zip PATH] [--repeat N] [--workers N]

Each repeat ingests into a fresh temporary root (so nothing is reused), then re-ingests the same zip
(must report the same id and write nothing), then validates the version. Peak memory is the largest
sum of proportional set size (PSS: shared pages split between the processes sharing them) of this
process and its worker processes, sampled every 200 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from aidetect.data.config import load_data_config, load_validation_config
from aidetect.data.validation import validate_version
from aidetect.data.versions import ingest


class PeakMemory:
    """Sample the PSS of this process plus its children in a background thread."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = me.memory_full_info().pss
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += child.memory_full_info().pss
            self.peak = max(self.peak, total)
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds() -> float:
    """User + system CPU of this process and its reaped children (pool workers are reaped on shutdown)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: Callable[[], Any]) -> tuple[Any, float, int, float]:
    """``(result, wall seconds, peak PSS bytes, CPU seconds)``."""
    with PeakMemory() as mem:
        cpu = cpu_seconds()
        start = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - start
        cpu = cpu_seconds() - cpu
    return out, seconds, mem.peak, cpu


def main() -> int:
    default_zip = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "cifake-train.zip"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zip", default=str(default_zip))
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--workers", type=int, default=0, help="ingest worker processes (0 = all cores)")
    args = ap.parse_args()
    if not Path(args.zip).exists():
        print(f"error: {args.zip} not found", file=sys.stderr)
        return 1
    cfg = load_data_config(overrides={"workers": args.workers})
    vcfg = load_validation_config()
    runs = []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="bench-ingest-") as root:
            run_ingest = functools.partial(ingest, args.zip, root=root, config=cfg)
            res, t_ingest, m_ingest, c_ingest = timed(run_ingest)
            again, t_again, _, _ = timed(run_ingest)
            val, t_val, m_val, c_val = timed(
                lambda res=res, root=root: validate_version(res.version_id, root, vcfg)
            )
        assert not again.created and again.version_id == res.version_id
        run = {
            "ingest_s": round(t_ingest, 2),
            "ingest_cpu_s": round(c_ingest, 2),
            "ingest_peak_mib": round(m_ingest / 2**20),
            "reingest_s": round(t_again, 2),
            "validate_s": round(t_val, 2),
            "validate_cpu_s": round(c_val, 2),
            "validate_peak_mib": round(m_val / 2**20),
            "images": sum(sum(c.values()) for c in res.counts.values()),
            "version_id": res.version_id,
            "duplicate_pairs": val.duplicates["pairs"],
            "validation_success": val.success,
        }
        print(f"run {i + 1}: {json.dumps(run)}", flush=True)
        runs.append(run)
    keys = [
        "ingest_s",
        "ingest_cpu_s",
        "ingest_peak_mib",
        "reingest_s",
        "validate_s",
        "validate_cpu_s",
        "validate_peak_mib",
    ]
    summary = {k: statistics.median(r[k] for r in runs) for k in keys}
    summary.update(
        cores=len(os.sched_getaffinity(0)),
        workers=args.workers or "all cores",
        images_per_s=round(runs[0]["images"] / summary["ingest_s"]),
        load_avg_1m=round(os.getloadavg()[0], 1),
    )
    # CPU seconds / cores: what the wall time would be on an otherwise idle machine with perfect overlap.
    summary["ingest_idle_estimate_s"] = round(summary["ingest_cpu_s"] / summary["cores"], 1)
    print("median: " + json.dumps(summary))
    ok = summary["ingest_s"] < 60 and summary["ingest_peak_mib"] < 1024 and summary["validate_s"] < 30
    print("targets (ingest < 60 s, < 1 GiB; validate < 30 s): " + ("met" if ok else "NOT met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
