"""Benchmark: the native-resolution forensic detector on the shared photo data, with the
generalization protocol.

Data (``../shared/datasets``): ``real-vs-ai-512-{train,dev}.parquet`` (COCO/ImageNet photos vs
DiffusionDB, family ``photos``) and ``faces-ffhq-vs-stylegan2.parquet`` (FFHQ vs StyleGAN2, family
``faces``). Splits are this project's own (by content hash, 70/15/15); tuning uses val only.

Stages (each result is written to ``<out>/bench.json`` as soon as it exists; ``--resume`` skips the
finished ones and resumes an interrupted training run):

1. ``main``: ingest both families, train the preset, evaluate (threshold on val; test AUC, accuracy at
   the val threshold, ECE; per-source and resolution slices; robustness slices JPEG q50/q75,
   down-scale x0.5, blur, upload = longest side 1080 then JPEG q85), optimize (ONNX variants, parity on
   the crops, latency), register (gates in ``bench/photo_forensic_gates.yaml``) and keep the bundle.
2. ``lofo_<family>`` (leave one family out, ``--lofo``): train on the other family only, choose the
   threshold on its val split, then report AUC, accuracy at that threshold and ECE on every image of
   the held-out family, clean and through the upload pipeline.

    nice -n 5 .venv/bin/python bench/train_photo.py --out /tmp/photo-bench [--resume] [--lofo]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"
FAMILIES = {
    "photos": ("real-vs-ai-512-train.parquet", "real-vs-ai-512-dev.parquet"),
    "faces": ("faces-ffhq-vs-stylegan2.parquet",),
}
GATES = str(REPO / "bench" / "photo_forensic_gates.yaml")
SLICES = str(REPO / "bench" / "photo_forensic_slices.yaml")
SPLITS = {"train": 0.7, "val": 0.15, "test": 0.15}
EVAL = {"batch_size": 64}


def _source(root: Path, families: tuple[str, ...]) -> str:
    """A folder of links to the families' parquet files (names without split words: splits by hash)."""
    folder = root / "sources" / "+".join(families)
    folder.mkdir(parents=True, exist_ok=True)
    for fam in families:
        for i, name in enumerate(FAMILIES[fam]):
            link = folder / f"{fam}{i}.parquet"
            if not link.exists():
                link.symlink_to(SHARED / name)
    return str(folder)


class Bench:
    """The stages' results, saved after each one (resumable)."""

    def __init__(self, out: Path, resume: bool) -> None:
        self.out, self.path = out, out / "bench.json"
        self.data: dict[str, Any] = json.loads(self.path.read_text()) if resume and self.path.exists() else {}
        self.t0 = time.monotonic()

    def done(self, stage: str) -> bool:
        return stage in self.data

    def record(self, stage: str, result: dict[str, Any]) -> None:
        self.data[stage] = {**result, "stage_minutes": round((time.monotonic() - self.t0) / 60, 1)}
        self.out.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=2, default=str))
        print(f"== {stage}: {json.dumps(result, default=str)[:2000]}", flush=True)


def _ingest(stores: Any, families: tuple[str, ...], root: Path) -> Any:
    from aidetect import flows
    from aidetect.data.config import load_data_config

    cfg = load_data_config(overrides={"duplicates": "drop", "split_fractions": SPLITS})
    ing = flows.ingest(_source(root, families), stores, cfg)
    print(f"dataset {'+'.join(families)}: {ing.result.version_id} {ing.result.counts}", flush=True)
    return ing.dataset


def _train(stores: Any, dataset: Any, out: Path, preset: str, epochs: int | None, resume: bool) -> Any:
    from aidetect import flows

    overrides = {"epochs": epochs} if epochs else {}
    resume = resume and (out / "state.pt").exists()
    model, result = flows.train(dataset, stores, out, preset=preset, overrides=overrides, resume=resume)
    history = json.loads((out / "history.json").read_text())["history"]
    return model, {
        "best_epoch": result.best_epoch,
        "best_val_f1": round(result.best_val_f1, 4),
        "epochs_run": result.epochs_run,
        "train_minutes": round(result.seconds / 60, 1),
        "val_auc_by_epoch": [round(h["val_roc_auc"], 4) for h in history],
    }


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    keys = ("n", "accuracy", "f1", "roc_auc", "ece", "fake_recall")
    r4 = lambda m: {k: round(m[k], 4) if isinstance(m.get(k), float) else m.get(k) for k in keys}  # noqa: E731
    return {
        "threshold": round(report["threshold"], 4),
        "test": r4(report["metrics"]),
        "slices": {fam: {g: r4(m) for g, m in groups.items()} for fam, groups in report["slices"].items()},
        "perturbations": {p: r4(m) for p, m in report["perturbations"].items()},
        "gates_passed": report["gates"]["passed"],
        "gate_failures": report["gates"]["failures"],
    }


def _held_out(checkpoint: Path, dataset: Any) -> dict[str, Any]:
    """AUC / accuracy at the model's own val threshold / ECE on every image of ``dataset``."""
    import numpy as np

    from aidetect.decision import DecisionSpec
    from aidetect.model.checkpoint import load_checkpoint
    from aidetect.model.data import SplitData, load_split
    from aidetect.model.evaluate import predict
    from aidetect.model.metrics import classification_metrics

    model, meta = load_checkpoint(str(checkpoint))
    version = dataset.open()
    parts = [load_split(version, s) for s in ("train", "val", "test")]
    import pandas as pd

    data = SplitData(
        [b for p in parts for b in p.images],
        np.concatenate([p.targets for p in parts]),
        pd.concat([p.rows for p in parts], ignore_index=True),
    )
    rule = DecisionSpec.from_meta({**version.meta, **meta})
    out: dict[str, Any] = {"threshold_from_train_family_val": round(rule.threshold, 4)}
    for pert in (None, "upload_1080_q85"):
        m = classification_metrics(predict(model, meta, data, 64, pert), data.targets, rule)
        key = pert or "clean"
        out[key] = {
            k: round(m[k], 4) if isinstance(m[k], float) else m[k]
            for k in ("n", "roc_auc", "accuracy", "ece", "fake_recall")
        }
        out[key]["real_recall"] = round(m[f"recall.{rule.real_label}"], 4)
    return out


FAMILY_SOURCES = {"photos": ("coco", "imagenet", "diffusiondb"), "faces": ("ffhq", "stylegan2")}


def _within_families(probs: Any, test: Any, rule: Any) -> dict[str, Any]:
    """AUC and accuracy (at ``rule``'s threshold) of ``probs`` within each family of ``test``: real and
    fake from one pipeline (faces: the same content too), so a content difference cannot carry them."""
    import numpy as np

    from aidetect.model.metrics import classification_metrics

    origin = test.rows["origin"].astype(str).to_numpy()
    out = {}
    for fam, members in FAMILY_SOURCES.items():
        idx = np.nonzero(np.isin(origin, members))[0]
        m = classification_metrics(probs[idx], test.targets[idx], rule)
        out[fam] = {"n": len(idx), "auc": round(m["roc_auc"], 4), "accuracy": round(m["accuracy"], 4)}
    return out


def _by_family(checkpoint: Path, dataset: Any) -> dict[str, Any]:
    """Test AUC within each family, clean and under every robustness slice: a cue that dies under one
    JPEG re-encode of both classes is a compression shortcut, not a generation trace."""
    from aidetect.decision import DecisionSpec
    from aidetect.model.checkpoint import load_checkpoint
    from aidetect.model.config import PERTURBATION_NAMES
    from aidetect.model.data import load_split
    from aidetect.model.evaluate import predict

    model, meta = load_checkpoint(str(checkpoint))
    test = load_split(dataset.open(), "test")
    rule = DecisionSpec.from_meta(meta)
    return {
        pert or "clean": _within_families(predict(model, meta, test, 64, pert), test, rule)
        for pert in (None, *PERTURBATION_NAMES)
    }


def _cost(main_dir: Path, dataset: Any) -> dict[str, Any]:
    """Per crop budget (the served grid vs the centre crop only): test AUC / accuracy at the val threshold
    of the evaluated checkpoint, and one-thread milliseconds per 512 px JPEG for decode + crops +
    onnxruntime (the chosen bundle's graph), i.e. what one server thread spends per image."""
    import statistics

    import numpy as np

    from aidetect.data import crops
    from aidetect.decision import DecisionSpec
    from aidetect.model.checkpoint import load_checkpoint
    from aidetect.model.data import load_split
    from aidetect.model.evaluate import predict
    from aidetect.model.metrics import classification_metrics
    from aidetect.serving.bundle import load_bundle
    from aidetect.serving.classifier import OnnxClassifier

    model, meta = load_checkpoint(str(main_dir / "train" / "eval" / "model.pt"))
    test = load_split(dataset.open(), "test")
    rule = DecisionSpec.from_meta(meta)
    bundle = load_bundle(main_dir / "bundle")
    classify = OnnxClassifier(bundle, intra_op_threads=1)
    jpegs = [b for b in test.images if b[:2] == b"\xff\xd8"][:40]
    out: dict[str, Any] = {"images_timed": len(jpegs)}
    for n in (4, 1):
        pre = {**meta["preprocess"], "max_crops": n, "grid": 2 if n > 1 else 1}
        probs = predict(model, {**meta, "preprocess": pre}, test, 64)
        m = classification_metrics(probs, test.targets, rule)
        family_auc = _within_families(probs, test, rule)
        spec = crops.PreprocessSpec.from_meta({"preprocess": pre, "input_size": meta["input_size"]})
        times = []
        for data in jpegs * 2:
            t = time.perf_counter()
            x = crops.inputs_from_bytes(data, spec, int(meta["input_size"]), meta["mean"], meta["std"])
            probs = classify(x)
            crops.aggregate(probs, np.zeros(len(x), np.int64), 1, spec.aggregate, rule)
            times.append(time.perf_counter() - t)
        out[f"crops_{n}"] = {
            "test_auc": round(m["roc_auc"], 4),
            "by_family": family_auc,
            "test_accuracy": round(m["accuracy"], 4),
            "ms_per_512px_image_1_thread": round(statistics.median(times[len(jpegs) :]) * 1000, 2),
        }
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="/tmp/photo-bench")
    p.add_argument("--home", default=None, help="AIDETECT_HOME (default <out>/home)")
    p.add_argument("--preset", default="photo-forensic-cpu")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--lofo", action="store_true", help="also leave each family out (two more trainings)")
    p.add_argument("--lofo-epochs", type=int, default=None, help="default: the preset's epochs")
    p.add_argument("--resume", action="store_true")
    p.add_argument(
        "--cost", action="store_true", help="crops vs cost: test AUC and ms/image at 1 and 4 crops"
    )
    args = p.parse_args()

    out = Path(args.out).resolve()
    os.environ["AIDETECT_HOME"] = str(Path(args.home or out / "home").resolve())
    for k, v in (
        ("MLFLOW_DISABLE_TELEMETRY", "true"),
        ("DO_NOT_TRACK", "1"),
        ("GX_ANALYTICS_ENABLED", "false"),
    ):
        os.environ.setdefault(k, v)
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from aidetect import flows
    from aidetect.errors import AidetectError

    if not SHARED.is_dir():
        print(f"skipped: shared datasets not found at {SHARED}")
        return 0
    bench = Bench(out, args.resume)
    stores = flows.Stores()
    both = _ingest(stores, ("photos", "faces"), out)
    if not bench.done("main"):
        model, train_info = _train(
            stores, both, out / "main" / "train", args.preset, args.epochs, args.resume
        )
        ev = flows.evaluate(model, stores, dataset=both, gates=GATES, slices=SLICES, eval_overrides=EVAL)
        result: dict[str, Any] = {
            "dataset_version": both.version_id,
            "train": train_info,
            **_summary(ev.report),
            "by_family": _by_family(ev.checkpoint, both),
        }
        bundle = flows.optimize(model, stores, out / "main" / "bundle", dataset=both, max_validation=200)
        result["bundle"] = bundle.uri
        result["optimize"] = {
            v["variant"]: {
                k: v[k]
                for k in ("accuracy_diff_points", "max_probability_diff", "latency_ms_batch1", "passed")
            }
            for v in bundle.report["variants"]
        } | {"chosen": bundle.variant}
        if ev.passed:
            try:
                reg = flows.register(model, stores, evaluation=ev, bundle=bundle)
                result["registered"] = reg.to_dict()
            except AidetectError as exc:
                result["registered"] = f"failed: {exc}"
        else:
            result["registered"] = f"refused: {ev.reason}"
        bench.record("main", result)
    if args.lofo:
        for held in ("faces", "photos"):
            stage = f"lofo_{held}"
            if bench.done(stage):
                continue
            kept = tuple(f for f in FAMILIES if f != held)
            train_ds, held_ds = _ingest(stores, kept, out), _ingest(stores, (held,), out)
            folder = out / stage / "train"
            model, train_info = _train(stores, train_ds, folder, args.preset, args.lofo_epochs, args.resume)
            no_slices = out / "lofo_slices.yaml"
            no_slices.write_text("groups: [source]\nperturbations: []\n")
            ev = flows.evaluate(
                model, stores, dataset=train_ds, gates=GATES, slices=str(no_slices), eval_overrides=EVAL
            )
            result = {
                "trained_on": list(kept),
                "train": train_info,
                "in_family_test": _summary(ev.report)["test"],
                "held_out": _held_out(ev.checkpoint, held_ds),
            }
            bench.record(stage, result)
    if args.cost and not bench.done("cost") and bench.done("main"):
        bench.record("cost", _cost(out / "main", both))
    bench.record("total", {"minutes": round((time.monotonic() - bench.t0) / 60, 1)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
