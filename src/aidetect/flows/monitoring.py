"""Monitoring flows: compare the inference log with a version's reference, and start retraining."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from aidetect.errors import AidetectError
from aidetect.flows.stores import Stores

if TYPE_CHECKING:
    from aidetect.monitoring.config import RetrainConfig


def drift_check(
    model_name: str,
    alias: str,
    since: str,
    inference_log: str,
    stores: Stores,
    *,
    reports_uri: str = "",
) -> dict[str, Any]:
    """The drift verdict of ``model_name@alias`` over the last ``since`` (no retraining here: the
    pipeline's trigger step decides that), published under ``reports_uri`` ("": the config's; a KFP step
    pod has no ConfigMap environment, and its own disk is gone when it ends)."""
    from aidetect.monitoring.check import run_check
    from aidetect.monitoring.config import load_drift_config
    from aidetect.monitoring.drift import InsufficientDataError
    from aidetect.refs import ModelRef

    stores.activate()
    overrides = {"since": since, "log_uri": inference_log or None, "model_name": model_name,
                 "reports_uri": reports_uri or None}  # fmt: skip
    cfg = load_drift_config(overrides=overrides)
    try:
        return run_check(ModelRef(model_name, alias), cfg)
    except InsufficientDataError as exc:
        return insufficient_verdict(model_name, str(exc))


def insufficient_verdict(model_name: str, why: str) -> dict[str, Any]:
    """A window too small to judge is a verdict too, never drift: the pipeline's other check (live
    quality) still decides, instead of the whole run failing on a quiet hour."""
    return {
        "model_name": model_name,
        "model_version": "",
        "dataset_version": "",
        "status": "insufficient",
        "drift_detected": False,
        "reasons": [why],
        "drift_share": 0.0,
        "drifted_features": [],
        "rows_current": 0,
        "report_uri": "",
        "verdict_uri": "",
    }


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


def grow_for_retrain(verdict: dict[str, Any], stores: Stores, cfg: Any = None) -> Any:
    """Grow the newest version in the served model's line (its ``dataset_version`` or the newest version
    grown from it) with the labels gathered since; ``DataError`` when there is too little to add."""
    from aidetect import flows
    from aidetect.data.versions import list_versions
    from aidetect.errors import DataError

    served = str(verdict.get("dataset_version") or "")
    if not served:
        raise DataError("the verdict names no dataset_version to grow from")
    metas = list_versions(stores.datasets)
    parent = {m["version_id"]: m.get("parent", "") for m in metas}

    def depth(version: str) -> int:
        """Generations from ``served`` down to ``version``; -1 when not in its line."""
        steps, seen = 0, set()
        while version and version not in seen:
            if version == served:
                return steps
            seen.add(version)
            version, steps = parent.get(version, ""), steps + 1
        return -1

    # the newest of the line: the most generations grown from the served version, then the latest
    line = [(depth(m["version_id"]), m.get("created_at", ""), m["version_id"]) for m in metas]
    base = max([x for x in line if x[0] >= 0], default=(0, "", served))[2]
    return flows.grow(flows.DatasetRef.resolve(base, stores.datasets_root), stores, cfg=cfg)


def retrain_settings(
    model_name: str, state_uri: str = "", retrain: RetrainConfig | None = None
) -> RetrainConfig:
    """The retrain settings a launch obeys (``retrain``, else ``configs/drift.yaml``'s), with the launch
    record at ``state_uri`` when given: one record, so every path into a launch shares one cooldown."""
    from aidetect.monitoring.config import load_drift_config

    settings = retrain or load_drift_config(overrides={"model_name": model_name}).retrain
    return replace(settings, state_uri=state_uri) if state_uri else settings


def trigger_retrain(
    verdict: dict[str, Any],
    model_name: str,
    kfp_host: str,
    data_uri: str,
    training_arguments: dict[str, str],
    verdict_uri: str = "",
    *,
    grow_first: bool | None = None,
    state_uri: str = "",
    retrain: RetrainConfig | None = None,
) -> dict[str, Any]:
    """Start the training pipeline for a drifted or degraded model unless a launch is within the cooldown.

    With ``grow.before_retrain`` (or ``grow_first``) the newest version of the served model's line is
    grown with the reviewers' labels first and the run trains on it, warm-started from the served model
    (``init_from``); too little to grow: no launch, the reason in the result.

    ``retrain`` (a :class:`~aidetect.monitoring.config.RetrainConfig`, as ``aidetect drift check`` loaded
    it): its ``command`` template is the launcher, ``{data_uri}`` = what was grown (else ``data_uri``).
    Without it: ``configs/drift.yaml``'s settings and the training pipeline (local, or submitted to
    ``kfp_host``) with ``training_arguments``. ``state_uri`` records the launches that hold the cooldown
    (folder or ``s3://``; "": the settings' own, under ``AIDETECT_HOME``, which a KFP pod loses)."""
    from aidetect import paths
    from aidetect.errors import DataError
    from aidetect.feedback.grow import load_feedback_config
    from aidetect.monitoring.retrain import held, maybe_retrain

    settings = retrain_settings(model_name, state_uri, retrain)
    feedback = load_feedback_config()
    grow = feedback.grow.before_retrain if grow_first is None else grow_first
    if not data_uri and not grow and retrain is None:  # a template may not need {data_uri}
        raise AidetectError("data_uri is empty: retraining needs the labelled data to train on")
    refused = held(settings, model_name)
    if refused is not None:
        return {"action": "skipped", "reason": refused.reason, "cooldown_until": refused.cooldown_until,
                "launch": asdict(refused.launch) if refused.launch else None}  # fmt: skip
    dataset_version = str(verdict.get("dataset_version", ""))
    grown: dict[str, Any] | None = None
    if grow:
        stores = Stores(datasets_root=training_arguments.get("datasets_root", ""))
        try:
            done = grow_for_retrain(verdict, stores, feedback)
        except DataError as exc:
            return {"action": "skipped", "reason": f"not launched: {exc}", "cooldown_until": None,
                    "launch": None, "grown": None}  # fmt: skip
        data_uri, dataset_version, grown = done.dataset.uri, done.dataset.version_id, done.summary()
    init_from = f"models:/{model_name}/{verdict['model_version']}"  # warm start from the served model
    if retrain is None:
        arguments = {**training_arguments, "model_name": model_name, "init_from": init_from}
        settings = replace(settings, command=retrain_command(kfp_host, data_uri, arguments))
    else:
        settings = replace(settings, data_uri=data_uri)
    # Inside a KFP component _KFP_RUNTIME=true makes kfp skip imports the launched `aidetect pipeline`
    # command needs (kfp.compiler then fails on a circular import): the child must not inherit it.
    os.environ.pop("_KFP_RUNTIME", None)
    decision = maybe_retrain(
        settings,
        model_name=model_name,
        model_version=str(verdict["model_version"]),
        dataset_version=dataset_version,
        reasons=list(verdict.get("reasons", [])),
        verdict_uri=str(verdict.get("verdict_uri", verdict_uri)),
        log_dir=str(paths.home() / "monitoring" / "retrain"),
        init_from=init_from,
    )
    launch = asdict(decision.launch) if decision.launch else None
    if launch and launch["status"] == "failed":
        raise AidetectError(f"retraining launch failed: {decision.reason}")
    return {
        "action": "launched" if decision.launched else "skipped",
        "reason": decision.reason,
        "cooldown_until": decision.cooldown_until,
        "launch": launch,
        "grown": grown,
    }


def retrainer(
    model_name: str, kfp_host: str, data_uri: str, retrain: RetrainConfig | None = None
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """What a check calls with its verdict when it judged drift or degradation: :func:`trigger_retrain`,
    growing first, as the monitoring pipeline does (``aidetect drift check`` / ``quality check``)."""

    def start(verdict: dict[str, Any]) -> dict[str, Any]:
        return trigger_retrain(verdict, model_name, kfp_host, data_uri, {}, retrain=retrain)

    return start
