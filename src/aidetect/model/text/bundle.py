"""Optimize a gated text model into a serving bundle, build its drift reference, and register it.

A text bundle is a folder with ``model.onnx`` (input ``ids`` INT64 ``[N, L]``, output
``probabilities``) and ``bundle.json`` with ``"modality": "text"``, the decision rule (labels, real
label, threshold) and ``max_len``. Registration is all or nothing, as for images: the version gets its
checkpoint, reports, plots, ``serving/`` (stamped with the final name and version) and ``reference/``
(text features of the validation split, :mod:`aidetect.data.text.features`), and only then its alias.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from aidetect import registry
from aidetect.data.text.encode import INPUT_NAME, OUTPUT_NAME, encode_ids
from aidetect.data.text.features import TEXT_FEATURE_COLUMNS, text_features
from aidetect.data.versions import DatasetVersion
from aidetect.decision import DecisionSpec
from aidetect.errors import DataError
from aidetect.model.lineage import git_commit, read_json, write_json
from aidetect.model.text import runtime
from aidetect.model.text.train import load_text_split

BUNDLE_FILE = "bundle.json"
MAX_TEXT_BYTES = 100_000


def _latency(sess: Any, texts: list[str], max_len: int) -> tuple[float, float]:
    """(median ms for one text per call, texts/s in calls of 32), over the given texts."""
    singles = []
    for t in texts[:50]:
        ids = encode_ids([t], max_len, min_len=runtime.MIN_LEN)
        started = time.perf_counter()
        sess.run([OUTPUT_NAME], {INPUT_NAME: ids})
        singles.append(time.perf_counter() - started)
    batch = (texts * (1 + 256 // max(1, len(texts))))[:256]
    started = time.perf_counter()
    runtime.probabilities(sess, batch, max_len, batch=32)
    rate = len(batch) / (time.perf_counter() - started)
    return 1000 * float(np.median(singles)), rate


def optimize_text(
    eval_dir: str | Path, version: DatasetVersion, out: str | Path, *, max_texts: int = 500
) -> dict[str, Any]:
    """Write the bundle into ``out``: onnxruntime's offline-optimized graph, checked against the evaluated
    graph on up to ``max_texts`` validation texts. Returns the optimize report (the image report's schema,
    :class:`aidetect.model.optimize.OptimizeReport`; also written as ``optimize.json``)."""
    from aidetect.model.evaluate import _publishing
    from aidetect.model.optimize import OptimizeReport, VariantReport, optimize_graph

    eval_dir = Path(eval_dir)
    meta = dict(read_json(eval_dir / "meta.json"))
    rule = DecisionSpec.from_meta(meta)
    max_len = int(meta["max_len"])
    texts, targets, _ = load_text_split(version, "val", max_texts)
    if not texts:
        texts, targets, _ = load_text_split(version, "train", max_texts)
    with _publishing(Path(out)) as stage:
        optimize_graph(eval_dir / "model.onnx", stage / "model.onnx")
        ref = runtime.probabilities(runtime.session(eval_dir / "model.onnx"), texts, max_len)
        fast = runtime.session(stage / "model.onnx", threads=1)
        got = runtime.probabilities(fast, texts, max_len)
        diff = float(np.abs(got - ref).max()) if texts else 0.0
        if diff > 1e-4:
            raise DataError(f"the optimized graph differs from the evaluated one by {diff:.2e}")
        single_ms, rate = _latency(fast, texts, max_len)

        def accuracy(p: np.ndarray) -> float:
            return float((rule.decide(p) == targets).mean()) if len(targets) else float("nan")

        variant = VariantReport(
            variant="fp32-opt",
            accuracy=accuracy(got),
            accuracy_diff_points=100 * (accuracy(ref) - accuracy(got)),
            max_probability_diff=diff,
            latency_ms_batch1=round(single_ms, 3),
            throughput_batch32=round(rate, 1),
            size_bytes=(stage / "model.onnx").stat().st_size,
            passed=True,
            note="texts/s with one onnxruntime thread",
        )
        report = OptimizeReport("fp32-opt", accuracy(ref), len(texts), [variant], str(Path(out).resolve()))
        write_json(stage / "optimize.json", report.to_dict())
        write_json(
            stage / BUNDLE_FILE, bundle_json(meta, model_name="", model_version="", variant="fp32-opt")
        )
    return report.to_dict()


def bundle_json(
    meta: dict[str, Any], *, model_name: str, model_version: str, variant: str = "fp32-opt"
) -> dict[str, Any]:
    spec = DecisionSpec.from_meta(meta)
    return {
        "modality": "text",
        "model_name": model_name,
        "model_version": str(model_version),
        **spec.to_meta(),
        "positive_label": spec.fake_label or "",
        "arch": meta["arch"],
        "max_len": int(meta["max_len"]),
        "max_text_bytes": MAX_TEXT_BYTES,
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "variant": variant,
        "dataset_version": meta.get("dataset_version", ""),
    }


def text_reference(
    version: DatasetVersion, bundle_dir: Path, split: str = "val", max_rows: int = 5000
) -> pd.DataFrame:
    """The inference-log columns for ``split``: text features, the bundle's outputs, ``true_label``."""
    from aidetect.monitoring.reference import _prediction_columns

    meta = dict(read_json(bundle_dir / BUNDLE_FILE))
    texts, _, rows = load_text_split(version, split, max_rows)
    probs = runtime.probabilities(runtime.session(bundle_dir / "model.onnx"), texts, int(meta["max_len"]))
    frame = pd.DataFrame([text_features(t) for t in texts], columns=TEXT_FEATURE_COLUMNS)
    preds = _prediction_columns(probs, SimpleNamespace(rule=DecisionSpec.from_meta(meta)))  # type: ignore[arg-type]
    for key, value in preds.items():
        frame[key] = value
    frame["true_label"] = rows["label"].to_numpy()
    frame["sha256"] = rows["sha256"].to_numpy()
    return frame


def register_text(
    model_dir: str | Path,
    bundle_dir: str | Path,
    version: DatasetVersion,
    *,
    model_name: str,
    alias: str | None = "candidate",
    extra_tags: dict[str, str] | None = None,
    eval_dir: str | Path | None = None,
) -> registry.VersionInfo:
    """Register the evaluated (``eval_dir``, default ``<model_dir>/eval``), optimized text model; refused
    when its gates failed."""
    from aidetect.errors import GateFailedError
    from aidetect.monitoring.reference import Profile, log_reference

    model_dir, bundle_dir = Path(model_dir), Path(bundle_dir)
    eval_dir = Path(eval_dir) if eval_dir else model_dir / "eval"
    ev = dict(read_json(eval_dir / "eval.json"))
    if not ev.get("passed"):
        raise GateFailedError(
            f"quality gates failed, not registered: {'; '.join(ev.get('failures', [])[:5])}"
        )
    run_id = str(read_json(model_dir / "run.json").get("run_id") or "")
    meta = dict(read_json(eval_dir / "meta.json"))
    if not run_id:
        run_id = registry.start_run("aidetect-text", run_name=f"text-{meta['arch']}")
        registry.end_run(run_id)
    with tempfile.TemporaryDirectory(prefix="aidetect-text-register-") as tmp:
        ckpt = Path(tmp) / "checkpoint"
        ckpt.mkdir()
        for name in ("model.onnx", "meta.json"):
            shutil.copyfile(eval_dir / name, ckpt / name)
        registry.log_artifacts(run_id, ckpt, "checkpoint")
        reports = Path(tmp) / "reports"
        reports.mkdir()
        for name in ("gate_report.json", "gate_report.md", "metrics.json"):
            shutil.copyfile(eval_dir / name, reports / name)
        registry.log_artifacts(run_id, reports, "reports")
        registry.log_artifacts(run_id, eval_dir / "plots", "plots")
        report = dict(read_json(eval_dir / "gate_report.json"))
        metrics = {k: v for k, v in report["metrics"].items() if isinstance(v, float) and v == v}
        registry.log_metrics(run_id, metrics)
        tags = {
            "dataset_version": version.version_id,
            "git_commit": git_commit(),
            "gate_status": "passed",
            "threshold": f"{float(ev['threshold']):.6f}",
            "modality": "text",
            "arch": str(meta["arch"]),
            **(extra_tags or {}),
        }
        info = registry.register_version(run_id, model_name, tags=tags, alias=None)
        try:
            serving = Path(tmp) / "serving"
            shutil.copytree(bundle_dir, serving)
            write_json(
                serving / BUNDLE_FILE, bundle_json(meta, model_name=model_name, model_version=info.version)
            )
            registry.log_version_artifacts(model_name, info.version, serving, "serving")
            frame = text_reference(version, serving)
            profile = Profile(
                model_name=model_name,
                model_version=str(info.version),
                dataset_version=version.version_id,
                split="val",
                rows=len(frame),
                feature_columns=list(TEXT_FEATURE_COLUMNS),
                prediction_columns=[
                    c for c in frame.columns if c == "probability_fake" or c.startswith("p_")
                ],
                labels=list(version.labels),
            )
            log_reference(frame, profile)
            if alias:
                registry.set_alias(model_name, alias, info.version)
        except BaseException:
            with contextlib.suppress(Exception):
                registry.delete_version(model_name, info.version)
            raise
    return registry.get_version(model_name, info.version)
