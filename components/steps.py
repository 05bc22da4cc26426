"""The pipeline steps as plain functions over local paths: what each KFP component body calls.

No kfp import here: a KFP pod, ``kfp.local`` and tests run exactly these functions. Each step takes the
references written by the steps before it (small JSON files or folders) and returns a JSON-able dict that
the component maps onto KFP artifact metadata and metrics.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aidetect.errors import AidetectError

# Set by the local runner: each failing step writes {step, error} here so the run can name it in one line.
FAILURES_ENV = "AIDETECT_PIPELINE_FAILURES"


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically (parents created)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True, default=str)
    os.chmod(tmp, 0o644)
    os.replace(tmp, p)


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def flat_metadata(data: dict[str, Any]) -> dict[str, Any]:
    """The scalar entries of ``data`` (KFP metadata shows them in the UI); nested values as JSON text."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, (str, int, float, bool)) or value is None:
            out[key] = value
        else:
            out[key] = json.dumps(value, sort_keys=True, default=str)
    return out


def _record_failure(step: str, message: str) -> None:
    folder = os.environ.get(FAILURES_ENV)
    if folder:
        write_json(Path(folder) / f"{step}.json", {"step": step, "error": message})


def run_step(step: str, fn: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    """Run ``fn(**kwargs)``; on failure print ``error: step '<step>': <reason>``, record it, and exit 1."""
    started = time.monotonic()
    try:
        result = fn(**kwargs)
        print(f"step '{step}' finished in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
        return result
    except AidetectError as exc:
        message = str(exc)
    except Exception as exc:
        traceback.print_exc()
        message = f"{type(exc).__name__}: {exc}"
    print(f"error: step '{step}': {message}", file=sys.stderr, flush=True)
    _record_failure(step, message)
    raise SystemExit(1)


def _root(datasets_root: str) -> str | None:
    return datasets_root or None


# -- data ------------------------------------------------------------------------------------------


def ingest(data_uri: str, datasets_root: str) -> dict[str, Any]:
    """Ingest ``data_uri`` (folder, zip, parquet, s3://); the same content gives the same version id."""
    from aidetect.data.versions import ingest as ingest_source

    if not data_uri:
        raise AidetectError("data_uri is empty: name a folder, zip, parquet file or s3:// prefix")
    res = ingest_source(data_uri, root=_root(datasets_root))
    return {
        "version_id": res.version_id,
        "uri": res.uri,
        "root": datasets_root,
        "created": res.created,
        "counts": res.counts,
        "skipped": len(res.skipped),
    }


def _markdown_html(markdown: str, title: str) -> str:
    """A self-contained HTML page for a Markdown report (KFP's UI shows HTML artifacts inline)."""
    from html import escape

    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark").enable("table").render(markdown)
    style = "body{font-family:sans-serif;max-width:60em;margin:1em auto}table{border-collapse:collapse}"
    style += "td,th{border:1px solid #ccc;padding:2px 6px}"
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>" + (
        f"<style>{style}</style></head><body>{body}</body></html>"
    )


def validate(dataset_ref: dict[str, Any], report_path: str, out_path: str) -> dict[str, Any]:
    """Validate the version; write the HTML report; stop on critical failures.

    With the ``drop`` duplicates policy the suite derives a version without the extra copies: the
    reference written to ``out_path`` names the version the later steps must use.
    """
    from aidetect.data.validation import validate_version
    from aidetect.data.validation_report import render_markdown, write_reports

    result = validate_version(dataset_ref["version_id"], root=_root(dataset_ref.get("root", "")))
    write_reports(result)
    Path(report_path).parent.mkdir(parents=True, exist_ok=True)
    Path(report_path).write_text(_markdown_html(render_markdown(result), f"validation {result.version_id}"))
    result.raise_for_critical()
    ref = dict(dataset_ref)
    if result.derived_version:
        from aidetect.data.versions import open_version

        ref.update(version_id=result.derived_version, parent=dataset_ref["version_id"])
        ref["uri"] = open_version(result.derived_version, root=_root(ref.get("root", ""))).uri
    write_json(out_path, ref)
    metrics = {
        "expectations_failed": float(sum(1 for e in result.expectations if not e["success"])),
        "warnings": float(len(result.warnings)),
        "duplicate_rows": float(result.duplicates.get("rows", 0) or 0),
        "decode_failures": float(result.decode.get("failed", 0)),
    }
    return {"version_id": ref["version_id"], "metrics": metrics}


def _use_stores(datasets_root: str | None, mlflow_uri: str | None) -> None:
    """Point the library at the run's dataset root and tracking server (empty: keep the defaults)."""
    if datasets_root:
        os.environ["AIDETECT_DATASETS"] = datasets_root
    if mlflow_uri:
        os.environ["MLFLOW_TRACKING_URI"] = mlflow_uri


# -- model -----------------------------------------------------------------------------------------


def train(dataset_ref: dict[str, Any], preset: str, mlflow_uri: str, out_dir: str) -> dict[str, Any]:
    """Train from ``preset`` (a name under configs/presets or a YAML path) into ``out_dir``."""
    from aidetect.model.config import load_train_config
    from aidetect.model.train import train as train_model

    _use_stores(dataset_ref.get("root"), mlflow_uri)
    cfg = load_train_config(preset or None, overrides={"progress": False})
    res = train_model(cfg, dataset_ref["version_id"], out_dir)
    meta = {
        "run_id": res.run_id or "",
        "dataset_version": res.dataset_version,
        "arch": cfg.arch,
        "input_size": cfg.input_size,
        "preset": preset,
        "best_epoch": res.best_epoch,
    }
    metrics = {
        "best_val_f1": float(res.best_val_f1),
        "epochs_run": float(res.epochs_run),
        "train_seconds": float(res.seconds),
    }
    return {"meta": meta, "metrics": metrics}


def _roc_points(
    evaluated_model: Path, version_id: str, split: str, limit: int = 200
) -> dict[str, list[float]]:
    """ROC curve of the evaluated checkpoint on ``split`` (fake score vs real), at most ``limit`` points."""
    import numpy as np
    from sklearn.metrics import roc_curve

    from aidetect.data.versions import open_version
    from aidetect.model.checkpoint import load_checkpoint
    from aidetect.model.data import load_split
    from aidetect.model.evaluate import predict
    from aidetect.model.metrics import fake_score

    model, meta = load_checkpoint(str(evaluated_model))
    data = load_split(open_version(version_id), split, list(meta["labels"]))
    is_fake = (np.asarray(data.targets) != 0).astype(int)
    if len(np.unique(is_fake)) < 2:
        return {}
    fpr, tpr, thr = roc_curve(is_fake, fake_score(predict(model, meta, data, 256)))
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(limit, len(fpr))).astype(int))
    thr = np.clip(thr[keep], 0.0, 1.0)  # sklearn puts +inf first
    return {"fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist(), "thresholds": thr.tolist()}


def evaluate(
    dataset_ref: dict[str, Any],
    model_dir: str,
    gate_config: str,
    model_name: str,
    mlflow_uri: str,
    out_dir: str,
) -> dict[str, Any]:
    """Evaluate the trained checkpoint (threshold on val, metrics, slices, perturbations, champion
    comparison) and apply the gate rules; the thresholded checkpoint and reports go to ``out_dir``."""
    from aidetect.model.pipeline_steps import evaluate_step

    _use_stores(dataset_ref.get("root"), mlflow_uri)
    report = evaluate_step(
        model_dir, dataset_ref["version_id"], out_dir, gates=gate_config or None, model_name=model_name
    )
    m = report["metrics"]
    keys = (
        "accuracy",
        "f1",
        "macro_f1",
        "fake_recall",
        "fake_precision",
        "roc_auc",
        "pr_auc",
        "ece",
        "threshold",
    )
    metrics = {k: float(m[k]) for k in keys if isinstance(m.get(k), (int, float))}
    summary = {
        "gate_status": report["gate_status"],
        "dataset_version": report["dataset_version"],
        "eval_split": report["eval_split"],
        "threshold": report["threshold"],
    }
    roc = _roc_points(Path(out_dir) / "model.pt", report["dataset_version"], report["eval_split"])
    return {
        "metrics": metrics,
        "labels": list(report["labels"]),
        "confusion_matrix": m["confusion"],
        "roc": roc,
        "summary": summary,
    }


def gate(evaluation_dir: str, report_path: str, out_path: str) -> dict[str, Any]:
    """Publish the evaluation's gate verdict: the Markdown report, the JSON report, and passed/reason."""
    ev = Path(evaluation_dir)
    verdict = read_json(ev / "eval.json")
    Path(report_path).parent.mkdir(parents=True, exist_ok=True)
    Path(report_path).write_text((ev / "gate_report.md").read_text())
    write_json(out_path, read_json(ev / "gate_report.json"))
    passed = bool(verdict["passed"])
    failures = list(verdict.get("failures", []))
    reason = "all gates passed" if passed else "; ".join(failures[:5]) or "see the gate report"
    return {"passed": passed, "reason": reason}


def fingerprint(dataset_version: str, model_dir: str | Path, gate_config: str, code_version: str) -> str:
    """A digest of everything that decides a registered model: the dataset version, the resolved
    training config, the evaluation, slice and gate rules, and the code version."""
    import hashlib
    from dataclasses import asdict

    from aidetect.model.config import load_eval_config
    from aidetect.model.gates import load_gates_config
    from aidetect.model.slices import load_slices_config

    train_cfg = read_json(Path(model_dir) / "config.json").get("train", {})
    inputs = {
        "dataset_version": dataset_version,
        "train": train_cfg,
        "evaluate": asdict(load_eval_config()),
        "slices": asdict(load_slices_config()),
        "gates": asdict(load_gates_config(gate_config or None)),
        "code": code_version,
    }
    blob = json.dumps(inputs, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


FINGERPRINT_TAG = "fingerprint"


def _existing_version(model_name: str, fp: str) -> Any:
    from aidetect import registry

    for info in registry.list_versions(model_name):
        if info.tags.get(FINGERPRINT_TAG) == fp:
            return info
    return None


def _publish_bundle(bundle_dir: str, name: str, version: str, tmp: Path) -> None:
    """Log the bundle to the version's ``serving/`` with the registered name and version in bundle.json."""
    import shutil

    from aidetect import registry
    from aidetect.serving.bundle import REGISTRY_ARTIFACT_PATH

    staged = tmp / "bundle"
    shutil.copytree(bundle_dir, staged)
    spec = read_json(staged / "bundle.json")
    spec.update(model_name=name, model_version=str(version))
    write_json(staged / "bundle.json", spec)
    registry.log_version_artifacts(name, version, staged, REGISTRY_ARTIFACT_PATH)


def register(
    dataset_ref: dict[str, Any],
    model_dir: str,
    evaluation_dir: str,
    bundle_dir: str,
    model_name: str,
    gate_config: str,
    mlflow_uri: str,
) -> dict[str, Any]:
    """Register the gated model (alias ``candidate``) with its serving bundle and drift reference profile.

    Idempotent: a version whose ``fingerprint`` tag matches these inputs is returned, not duplicated.
    """
    import shutil

    from aidetect import registry
    from aidetect.model.pipeline_steps import register_step
    from aidetect.monitoring.reference import profile_version

    _use_stores(dataset_ref.get("root"), mlflow_uri)
    run = read_json(Path(model_dir) / "run.json")
    fp = fingerprint(dataset_ref["version_id"], model_dir, gate_config, str(run.get("git_commit", "unknown")))
    existing = _existing_version(model_name, fp)
    if existing is not None:
        return {
            "name": existing.name,
            "version": existing.version,
            "uri": existing.uri,
            "created": False,
            "fingerprint": fp,
            "run_id": existing.run_id,
        }
    with tempfile.TemporaryDirectory(prefix="aidetect-register-") as tmp:
        # register_step writes registered.json beside the model: work on a copy, inputs stay untouched
        staged = Path(tmp) / "model"
        shutil.copytree(model_dir, staged, ignore=shutil.ignore_patterns("state.pt"))
        result = register_step(str(staged), evaluation_dir, model_name=model_name)
        name, version = result["name"], str(result["version"])
        registry.set_version_tag(name, version, FINGERPRINT_TAG, fp)
        _publish_bundle(bundle_dir, name, version, Path(tmp))
    profile_version(
        name,
        version,
        dataset_version=dataset_ref["version_id"],
        split="val",
        bundle_uri=bundle_dir,
        log_to_registry=True,
    )
    return {
        "name": name,
        "version": version,
        "uri": result["uri"],
        "created": True,
        "fingerprint": fp,
        "run_id": result["run_id"],
        "aliases": result["aliases"],
    }


# -- monitoring ------------------------------------------------------------------------------------


def drift_check(
    model_name: str,
    alias: str,
    since: str,
    inference_log: str,
    mlflow_uri: str,
    report_path: str,
    verdict_path: str,
) -> dict[str, Any]:
    """Compare the inference-log window with the version's reference profile (no retraining here:
    the pipeline's ``trigger-retrain`` step decides that)."""
    from aidetect import storage
    from aidetect.monitoring.check import ModelRef, run_check
    from aidetect.monitoring.config import load_drift_config

    _use_stores(None, mlflow_uri)
    overrides = {"since": since, "log_uri": inference_log or None, "model_name": model_name}
    cfg = load_drift_config(overrides=overrides)
    verdict = run_check(ModelRef(model_name, alias), cfg, retrain_on_drift=False)
    Path(report_path).parent.mkdir(parents=True, exist_ok=True)
    Path(report_path).write_bytes(storage.read_bytes(verdict["report_uri"]))
    write_json(verdict_path, verdict)
    metrics = {
        "drift_share": float(verdict["drift_share"]),
        "drifted_features": float(len(verdict["drifted_features"])),
        "rows_current": float(verdict["rows_current"]),
    }
    return {"drift": bool(verdict["drift_detected"]), "metrics": metrics}


def _literal(text: str) -> str:
    """Escape ``{}`` so the retrain command template keeps ``text`` as is."""
    return text.replace("{", "{{").replace("}", "}}")


def retrain_command(kfp_host: str, data_uri: str, training_arguments: dict[str, str]) -> list[str]:
    """The command that starts the training pipeline: a KFP submission, or a local run without a host."""
    cmd = [sys.executable, "-m", "aidetect.cli", "pipeline"]
    cmd += ["submit", "training", "--host", kfp_host] if kfp_host else ["run", "training", "--local"]
    cmd += ["--data", data_uri]
    for name, value in sorted(training_arguments.items()):
        if value:
            cmd += ["--param", f"{name}={value}"]
    return [_literal(arg) for arg in cmd]


def trigger_retrain(
    verdict_path: str, model_name: str, kfp_host: str, data_uri: str, training_arguments: dict[str, str]
) -> dict[str, Any]:
    """Start the training pipeline for a drifted model unless a launch is within the cooldown."""
    from dataclasses import asdict, replace

    from aidetect import paths
    from aidetect.monitoring.config import load_drift_config
    from aidetect.monitoring.retrain import maybe_retrain

    if not data_uri:
        raise AidetectError("data_uri is empty: retraining needs the labelled data to train on")
    verdict = read_json(verdict_path)
    cfg = load_drift_config(overrides={"model_name": model_name})
    arguments = {**training_arguments, "model_name": model_name}  # retrain the model that drifted
    retrain_cfg = replace(cfg.retrain, command=retrain_command(kfp_host, data_uri, arguments))
    # Inside a KFP component _KFP_RUNTIME=true makes kfp skip imports the launched `aidetect pipeline`
    # command needs (kfp.compiler then fails on a circular import): the child must not inherit it.
    os.environ.pop("_KFP_RUNTIME", None)
    decision = maybe_retrain(
        retrain_cfg,
        model_name=model_name,
        model_version=str(verdict["model_version"]),
        dataset_version=str(verdict.get("dataset_version", "")),
        reasons=list(verdict.get("reasons", [])),
        verdict_uri=str(verdict.get("verdict_uri", verdict_path)),
        log_dir=str(paths.home() / "monitoring" / "retrain"),
    )
    launch = asdict(decision.launch) if decision.launch else None
    if launch and launch["status"] == "failed":
        raise AidetectError(f"retraining launch failed: {decision.reason}")
    action = "launched" if decision.launched else "skipped"
    return {
        "action": action,
        "reason": decision.reason,
        "cooldown_until": decision.cooldown_until,
        "launch": launch,
    }


# -- serving ---------------------------------------------------------------------------------------


def optimize(model_dir: str, dataset_ref: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """Export ONNX variants, check parity, write the bundle of the fastest passing one to ``out_dir``."""
    from aidetect.model.optimize import optimize as build_bundle

    _use_stores(dataset_ref.get("root"), None)
    report = build_bundle(model_dir, dataset_ref["version_id"], out_dir, register=False)
    chosen = next(v for v in report.variants if v.variant == report.chosen)
    return {
        "variant": report.chosen,
        "accuracy": chosen.accuracy,
        "accuracy_diff_points": chosen.accuracy_diff_points,
        "max_probability_diff": chosen.max_probability_diff,
        "latency_ms_batch1": chosen.latency_ms_batch1,
        "n_validation": report.n_validation,
    }
