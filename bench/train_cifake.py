"""Benchmark: CIFAKE (training zip only) -> dataset version -> train -> evaluate + gates -> register.

Holds out val (model selection, threshold) and test (reported numbers) splits of the zip by content
hash. Reports accuracy/F1 on test, minutes to 95 % val accuracy and to the best epoch, the serving
bundle `aidetect optimize` builds for the registered version (fp32 / fp32-opt / int8, parity and
latency of each), and CPU inference latency of the trained network (torch and onnxruntime fp32,
1 and 2 threads).

    nice -n 5 .venv/bin/python bench/train_cifake.py --home bench/results/cifake-home \
        --out bench/results/cifake-run [--preset cifake-cpu] [--resume]

Re-running with ``--resume`` continues an interrupted training run. Writes ``<out>/bench.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _minutes_to(history: list[dict], key: str, target: float) -> float | None:
    for h in history:
        if h.get(key, 0.0) >= target:
            return round(h["elapsed_seconds"] / 60, 1)
    return None


def _latency(model_path: str, out: Path) -> dict[str, float]:
    """Median ms/image of the trained net on this CPU: torch eager and onnxruntime (fp32), batch 64."""
    import numpy as np
    import torch

    from aidetect.model.checkpoint import load_checkpoint

    model, meta = load_checkpoint(model_path)
    size = int(meta["input_size"])
    x = torch.randn(64, 3, size, size)
    res: dict[str, float] = {}
    onnx_path = out / "bench-model.onnx"
    torch.onnx.export(
        model,
        (x,),
        str(onnx_path),
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}},
        dynamo=False,
    )
    import onnxruntime as ort

    for threads in (1, 2):
        torch.set_num_threads(threads)
        times = []
        with torch.inference_mode():
            for _ in range(12):
                t = time.perf_counter()
                model(x)
                times.append((time.perf_counter() - t) / 64 * 1000)
        res[f"torch_ms_per_image_{threads}t"] = round(float(np.median(times[2:])), 4)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
        xn = x.numpy()
        times = []
        for _ in range(30):
            t = time.perf_counter()
            sess.run(None, {"input": xn})
            times.append((time.perf_counter() - t) / 64 * 1000)
        res[f"onnxruntime_ms_per_image_{threads}t"] = round(float(np.median(times[5:])), 4)
    return res


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--zip", default=str(REPO.parent / "shared" / "datasets" / "cifake-train.zip"))
    p.add_argument("--home", default=str(REPO / "bench" / "results" / "cifake-home"))
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "cifake-run"))
    p.add_argument("--preset", default="cifake-cpu")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--skip-register", action="store_true")
    p.add_argument(
        "--evaluate-only",
        action="store_true",
        help="Skip training: evaluate the best checkpoint of an interrupted run (not registrable).",
    )
    args = p.parse_args()

    os.environ["AIDETECT_HOME"] = str(Path(args.home).resolve())
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from aidetect import flows
    from aidetect.data.config import load_data_config

    out = Path(args.out)
    t0 = time.monotonic()
    stores = flows.Stores()
    ingested = flows.ingest(args.zip, stores, load_data_config(overrides={"duplicates": "drop"}))
    ing = ingested.result
    print(
        f"dataset version {ing.version_id} ({'created' if ing.created else 'exists'}) {ing.counts}",
        flush=True,
    )
    history = []
    if args.evaluate_only:
        history = json.loads((out / "train" / "history.json").read_text())["history"]
        best = max(history, key=lambda h: h["val_f1"])
        result = argparse.Namespace(
            best_epoch=best["epoch"],
            best_val_f1=best["val_f1"],
            epochs_run=len(history),
            seconds=history[-1]["elapsed_seconds"],
            finished=(out / "train" / "run.json").exists(),
        )
    else:
        overrides = {"epochs": args.epochs}
        trained = flows.train(
            ingested.dataset,
            stores,
            out / "train",
            preset=args.preset,
            overrides=overrides,
            resume=args.resume,
        )
        result = trained[1]
        history = json.loads((out / "train" / "history.json").read_text())["history"]
    summary: dict = {
        "dataset_version": ing.version_id,
        "preset": args.preset,
        "train": {k: v for k, v in result.__dict__.items()},
        "minutes_to_val_acc_95": _minutes_to(history, "val_accuracy", 0.95),
        "minutes_to_val_acc_98": _minutes_to(history, "val_accuracy", 0.98),
        "minutes_to_best": next(
            (round(h["elapsed_seconds"] / 60, 1) for h in history if h["epoch"] == result.best_epoch), None
        ),
        "history": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in h.items()} for h in history],
    }
    # evaluation, gates and registration (imported here: the training run is the long part)
    model = flows.TrainedModel(str(out / "train"))
    ev = flows.evaluate(model, stores, dataset=ingested.dataset, out=out / "eval")
    report = ev.report
    summary["test"] = {
        k: report["metrics"][k] for k in ("accuracy", "f1", "roc_auc", "pr_auc", "ece", "threshold", "n")
    }
    summary["gates_passed"] = report["gates"]["passed"]
    summary["slices"] = {
        name: {k: round(v["accuracy"], 4) for k, v in groups.items()}
        for name, groups in report["slices"].items()
    }
    if report["gates"]["passed"] and not args.skip_register and (out / "train" / "run.json").exists():
        # the serving bundle, as `aidetect optimize` builds it: variants parity-checked, timed, fastest kept
        bundle = flows.optimize(ev, stores, out / "bundle", dataset=ingested.dataset)
        summary["optimize"] = bundle.report
        summary["registered"] = flows.register(model, stores, evaluation=ev, bundle=bundle).to_dict()
    summary["latency"] = _latency(str(out / "eval" / "model.pt"), out)
    summary["total_minutes"] = round((time.monotonic() - t0) / 60, 1)
    (out / "bench.json").write_text(json.dumps(summary, indent=2, default=str))
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
