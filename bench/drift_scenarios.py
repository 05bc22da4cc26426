"""Drift detection quality on real data: false alarms, detections, and the time of a 10,000-row check.

    python bench/drift_scenarios.py [--work /tmp/aidetect-bench-drift] [--images 20000] [--epochs 2]

1. Prepare (cached in --work): a CIFAKE dataset version of --images images (80/10/10 splits), a detector
   trained on it (`aidetect train`, preset cifake-cpu), exported to an ONNX bundle (`aidetect optimize`).
2. Reference profile: features + predictions on the validation split (as `aidetect drift reference`).
3. False alarms: 20 windows of --window rows of CIFAKE images never ingested (held back, same
   distribution), each logged through the serving InferenceLog and checked with the CLI's code path.
4. Detection: windows of CIFAKE re-encoded at JPEG quality 30, and of real-vs-ai-512-dev.parquet.
5. Speed: one check over 10,000 logged rows (wall time of `run_check`, and of `aidetect drift check`
   in a fresh process).

Prints a Markdown table; needs ../shared/datasets.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aidetect.monitoring.check import run_check  # noqa: E402
from aidetect.monitoring.config import load_drift_config  # noqa: E402
from aidetect.monitoring.reference import BundleScorer, build_reference, write_reference  # noqa: E402
from aidetect.paths import shared_datasets  # noqa: E402
from aidetect.refs import ModelRef  # noqa: E402
from tests.helpers import drift as helpers  # noqa: E402

MODEL, VERSION = "bench-detector", "1"


def sh(*args: str, env: dict[str, str]) -> str:
    out = subprocess.run(args, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return out.stdout


def prepare(
    work: Path, zip_path: Path, names: list[str], epochs: int, env: dict[str, str]
) -> tuple[str, Path]:
    """Dataset version id and bundle folder (built once, then reused)."""
    marker = work / "prepared.json"
    if marker.exists():
        meta = json.loads(marker.read_text())
        return meta["dataset"], Path(meta["bundle"])
    tree = helpers.extract_tree(zip_path, names, work / "cifake-src")
    aidetect = str(Path(sys.executable).parent / "aidetect")
    out = sh(aidetect, "data", "ingest", str(tree), "--root", str(work / "datasets"), env=env)
    dataset = out.split()[2]
    t = time.perf_counter()
    sh(aidetect, "train", "--data", dataset, "--out", str(work / "train"), "--preset", "cifake-cpu",
       "--epochs", str(epochs), "--no-track", env=env)  # fmt: skip
    print(f"trained in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    sh(aidetect, "optimize", "--model", str(work / "train"), "--data", dataset, "--out", str(work / "bundle"),
       "--name", MODEL, "--version", VERSION, "--variants", "fp32", "--no-register", env=env)  # fmt: skip
    marker.write_text(json.dumps({"dataset": dataset, "bundle": str(work / "bundle")}))
    return dataset, work / "bundle"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="/tmp/aidetect-bench-drift")
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--window", type=int, default=250)
    parser.add_argument("--windows", type=int, default=20)
    args = parser.parse_args()
    shared = shared_datasets()
    if shared is None:
        raise SystemExit("../shared/datasets is needed")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "AIDETECT_HOME": str(work / "home"), "AIDETECT_DATASETS": str(work / "datasets")}
    os.environ.update({"AIDETECT_HOME": env["AIDETECT_HOME"], "AIDETECT_DATASETS": env["AIDETECT_DATASETS"]})
    zip_path = shared / "cifake-train.zip"
    names = helpers.cifake_names(zip_path, seed=7)
    ingested, held = names[: args.images], names[args.images :]
    dataset, bundle = prepare(work, zip_path, ingested, args.epochs, env)
    scorer = BundleScorer(str(bundle))

    t = time.perf_counter()
    ref, profile = build_reference(
        dataset, model_name=MODEL, model_version=VERSION, scorer=scorer, split="val"
    )
    ref_dir = work / "reference"
    shutil.rmtree(ref_dir, ignore_errors=True)
    write_reference(ref, profile, str(ref_dir))
    print(f"reference: {len(ref)} rows in {time.perf_counter() - t:.1f} s", file=sys.stderr)

    log = work / "log"
    shutil.rmtree(log, ignore_errors=True)
    shutil.rmtree(work / "home" / "drift", ignore_errors=True)
    cfg = load_drift_config(overrides={"log_uri": str(log), "reports_uri": str(work / "home" / "drift")})
    now = datetime.now(UTC)
    n, w = args.windows, args.window
    scenarios: dict[str, list[list[bytes]]] = {
        "held-back CIFAKE (no drift expected)": [
            helpers.read_members(zip_path, held[i * w : (i + 1) * w]) for i in range(n)
        ],
    }
    q30_source = held[n * w : n * w + 5 * w]
    scenarios["CIFAKE re-encoded at JPEG q30"] = [
        [helpers.reencode(b, 30) for b in helpers.read_members(zip_path, q30_source[i * w : (i + 1) * w])]
        for i in range(5)
    ]
    dev = helpers.dev512_images(shared / "real-vs-ai-512-dev.parquet")
    scenarios["real-vs-ai-512-dev (512 px photos/SD)"] = [dev[:200], dev[200:400]]

    rows = []
    for s_index, (name, windows) in enumerate(scenarios.items()):
        flagged, reasons, times = 0, {}, []
        for i, blobs in enumerate(windows):
            model = f"{MODEL}-s{s_index}-w{i}"
            helpers.write_log(log, model, VERSION, blobs, scorer, ts=now - timedelta(minutes=5))
            cfg.min_rows = min(cfg.min_rows, len(blobs))
            t = time.perf_counter()
            verdict = run_check(ModelRef(model, VERSION), cfg, reference_uri=str(ref_dir), now=now)
            times.append(time.perf_counter() - t)
            if verdict["drift_detected"]:
                flagged += 1
                for r in verdict["reasons"]:
                    key = r.split("(")[0].split(":")[0].strip()
                    reasons[key] = reasons.get(key, 0) + 1
            pred = verdict["prediction"]
            line = f"{name} #{i}: drift={verdict['drift_detected']} share={verdict['drift_share']:.2f}"
            print(f"{line} pred_p={pred['score'] if pred else None} {verdict['reasons']}", file=sys.stderr)
        rows.append((name, len(windows), len(windows[0]), flagged, reasons, statistics.median(times)))

    # speed: 10,000 logged rows (CIFAKE held-back images, reused), one check
    speed_model = f"{MODEL}-10k"
    pool = held[: n * w]
    blobs = helpers.read_members(zip_path, (pool * (10_000 // len(pool) + 1))[:10_000])
    helpers.write_log(log, speed_model, VERSION, blobs, scorer, ts=now - timedelta(minutes=5))
    t = time.perf_counter()
    verdict = run_check(ModelRef(speed_model, VERSION), cfg, reference_uri=str(ref_dir), now=now)
    in_process = time.perf_counter() - t
    assert verdict["rows_current"] == 10_000
    aidetect = str(Path(sys.executable).parent / "aidetect")
    t = time.perf_counter()
    sh(aidetect, "drift", "check", "--model", f"{speed_model}/{VERSION}", "--reference", str(ref_dir),
       "--log-uri", str(log), "--reports-uri", str(work / "home" / "drift"), "--since", "1h", "--no-retrain",
       env=env)  # fmt: skip
    cli = time.perf_counter() - t

    print(f"\nreference: {len(ref)} rows (val split of dataset {dataset}); model: {bundle}\n")
    print("| scenario | windows | rows/window | flagged | reasons (windows) | median check s |")
    print("|---|---:|---:|---:|---|---:|")
    for name, count, size, flagged, reasons, med in rows:
        why = ", ".join(f"{k} ({v})" for k, v in reasons.items()) or "-"
        print(f"| {name} | {count} | {size} | {flagged} | {why} | {med:.2f} |")
    print(
        f"\n10,000-row check: {in_process:.2f} s in process (run_check), {cli:.2f} s as a fresh CLI process"
    )


if __name__ == "__main__":
    main()
