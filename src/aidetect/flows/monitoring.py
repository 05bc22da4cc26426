"""Monitoring flows: compare the inference log with a version's reference, and start retraining."""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, replace
from typing import Any

from aidetect.errors import AidetectError
from aidetect.flows.stores import Stores


def drift_check(
    model_name: str, alias: str, since: str, inference_log: str, stores: Stores
) -> dict[str, Any]:
    """The drift verdict of ``model_name@alias`` over the last ``since`` (no retraining here: the
    pipeline's trigger step decides that)."""
    from aidetect.monitoring.check import run_check
    from aidetect.monitoring.config import load_drift_config
    from aidetect.refs import ModelRef

    stores.activate()
    overrides = {"since": since, "log_uri": inference_log or None, "model_name": model_name}
    cfg = load_drift_config(overrides=overrides)
    return run_check(ModelRef(model_name, alias), cfg, retrain_on_drift=False)


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
    verdict: dict[str, Any],
    model_name: str,
    kfp_host: str,
    data_uri: str,
    training_arguments: dict[str, str],
    verdict_uri: str = "",
) -> dict[str, Any]:
    """Start the training pipeline for a drifted model unless a launch is within the cooldown."""
    from aidetect import paths
    from aidetect.monitoring.config import load_drift_config
    from aidetect.monitoring.retrain import maybe_retrain

    if not data_uri:
        raise AidetectError("data_uri is empty: retraining needs the labelled data to train on")
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
        verdict_uri=str(verdict.get("verdict_uri", verdict_uri)),
        log_dir=str(paths.home() / "monitoring" / "retrain"),
    )
    launch = asdict(decision.launch) if decision.launch else None
    if launch and launch["status"] == "failed":
        raise AidetectError(f"retraining launch failed: {decision.reason}")
    return {
        "action": "launched" if decision.launched else "skipped",
        "reason": decision.reason,
        "cooldown_until": decision.cooldown_until,
        "launch": launch,
    }
