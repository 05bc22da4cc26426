"""The closed loop as pipeline steps: live quality, one retrain decision over both checks, growing first.

The monitoring pipeline runs the drift check (:func:`aidetect.flows.monitoring.drift_check`) and the
live-quality check (:func:`quality_check`) side by side, decides once (:func:`retrain_decision`: drift
*or* degradation), grows the served model's dataset line with the reviewers' labels
(:func:`grow_training_data`) and starts the training pipeline on what it grew. Each step is a function
here so the KFP components stay a mapping of artifacts, and so the rules (which verdict wins, what
happens with too few labels) have one home.
"""

from __future__ import annotations

from typing import Any

from aidetect.errors import AidetectError, DataError
from aidetect.flows.stores import Stores


def feedback_settings(
    labels_root: str = "", capture_store: str = "", since: str = "", reports_uri: str = ""
) -> Any:
    """``configs/feedback.yaml`` with the pipeline's parameters over it (empty: the config's value).

    On a cluster a step's pod has no ConfigMap environment, and its disk goes with it: the label log,
    the capture store and where verdicts are published come in as pipeline parameters."""
    from aidetect.feedback.grow import load_feedback_config

    overrides: dict[str, Any] = {}
    if labels_root:
        overrides["labels"] = {"root": labels_root}
    if capture_store:
        overrides["capture"] = {"store_uri": capture_store}
    quality = {k: v for k, v in {"since": since, "reports_uri": reports_uri}.items() if v}
    if quality:
        overrides["quality"] = quality
    return load_feedback_config(overrides=overrides)


def quality_check(
    model_name: str,
    alias: str,
    since: str,
    inference_log: str,
    stores: Stores,
    *,
    labels_root: str = "",
    reports_uri: str = "",
) -> dict[str, Any]:
    """The live-quality verdict of ``model_name@alias`` over the last ``since`` (reviewers' labels joined
    with the inference log), published under ``reports_uri`` ("": the config's). Too few labels is a
    verdict too (``status: insufficient``, never degraded); no retraining here: the pipeline's decision
    step does that."""
    from aidetect import registry
    from aidetect.feedback import quality
    from aidetect.monitoring import check
    from aidetect.monitoring.config import load_drift_config

    stores.activate()
    version = alias if alias.isdigit() else registry.resolve_alias(model_name, alias)
    if version is None:
        raise DataError(f"model {model_name} has no alias {alias!r}")
    drift_cfg = load_drift_config(overrides={"model_name": model_name, "log_uri": inference_log or None})
    return quality.run_check(
        model_name,
        str(version),
        feedback_settings(labels_root=labels_root, since=since, reports_uri=reports_uri),
        log_uri=check.log_uri(drift_cfg),
        bundles=quality.bundle_of_registered(model_name),
    )


def retrain_decision(drift: dict[str, Any], live: dict[str, Any], scheduled: bool = False) -> dict[str, Any]:
    """One verdict from both checks: retrain when the inputs drifted or the live quality degraded, or
    on a schedule (``scheduled``: the weekly run learns from the week's labels without an alarm).

    The result carries what :func:`aidetect.flows.monitoring.trigger_retrain` reads (``model_version``,
    ``dataset_version``, ``reasons``, ``verdict_uri``) plus ``retrain`` and ``triggers``. Both checks
    must have judged the same version: an alias that moved between them is an error, not a guess."""
    drift_version = str(drift.get("model_version", ""))
    live_version = str(live.get("model_version", drift_version))
    if drift_version and live_version and drift_version != live_version:
        raise AidetectError(
            f"the drift check judged version {drift_version} and the quality check {live_version}: "
            "the alias moved between them; run the pipeline again"
        )
    triggers = []
    if drift.get("drift_detected"):
        triggers.append("drift")
    if live.get("degraded"):
        triggers.append("degradation")
    reasons = [f"drift: {r}" for r in drift.get("reasons", [])] if "drift" in triggers else []
    # live-quality reasons already say "degradation: ..." (aidetect.feedback.quality)
    reasons += list(live.get("reasons", [])) if "degradation" in triggers else []
    if scheduled:
        triggers.append("schedule")
        reasons.append("schedule: periodic retrain on the newest grown version")
    first = drift if "drift" in triggers or not triggers else live
    return {
        "model_name": drift.get("model_name", live.get("model_name", "")),
        "model_version": drift_version or live_version,
        "dataset_version": drift.get("dataset_version") or live.get("dataset_version", ""),
        "retrain": bool(triggers),
        "triggers": triggers,
        "reasons": reasons,
        "verdict_uri": first.get("verdict_uri", ""),
        "verdicts": {"drift": drift.get("verdict_uri", ""), "quality": live.get("verdict_uri", "")},
        "quality_status": live.get("status", ""),
    }


def grow_training_data(
    verdict: dict[str, Any],
    data_uri: str,
    stores: Stores,
    *,
    labels_root: str = "",
    capture_store: str = "",
    state_uri: str = "",
) -> dict[str, Any]:
    """What the retrain trains on: the served model's dataset line grown with the reviewers' labels
    (``grow.before_retrain``), else ``data_uri`` as given.

    ``launch`` is False, with the reason, when a launch recorded at ``state_uri`` still holds the
    cooldown (asked before growing: no version is written that nothing would train on), or growing
    finds too little to add (or growth is off and no ``data_uri`` is set): missing data never starts a
    retrain."""
    from aidetect.flows.monitoring import grow_for_retrain, retrain_settings
    from aidetect.monitoring.retrain import held

    name = str(verdict.get("model_name", ""))
    refused = held(retrain_settings(name, state_uri), name)
    if refused is not None:
        return {"launch": False, "reason": f"not launched: {refused.reason}"}
    cfg = feedback_settings(labels_root=labels_root, capture_store=capture_store)
    if not cfg.grow.before_retrain:
        if not data_uri:
            return {"launch": False, "reason": "grow.before_retrain is off and data_uri is empty"}
        return {"launch": True, "reason": "trains on data_uri", "uri": data_uri, "grown": None}
    try:
        grown = grow_for_retrain(verdict, stores, cfg)
    except DataError as exc:
        return {"launch": False, "reason": f"not launched: {exc}"}
    return {
        "launch": True,
        "reason": f"grown version {grown.dataset.version_id}",
        "uri": grown.dataset.uri,
        "version_id": grown.dataset.version_id,
        "grown": grown.summary(),
    }
