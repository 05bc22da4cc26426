"""Live quality: reviewers' labels joined with the logged predictions say how accurate the served model is.

Feature drift is the early warning; this is the ground truth. Each labelled image (by ``sha256``) meets the
inference-log rows that served it, and every (model version, track) gets the gates' metrics over those
rows: n, accuracy, per-class precision/recall, F1 (the fake class's F1 for binary models, macro
otherwise: :func:`aidetect.model.metrics.classification_metrics` with the version's own
:class:`~aidetect.decision.DecisionSpec`), ECE and the confusion matrix, in total and per time bucket.

A verdict needs at least ``quality.min_labels`` labels in a group of the judged version: with fewer there
is no verdict (exit 3) and never an alarm. Degraded: live F1 under ``quality.min_f1`` over at least
``min_labels`` labels. One image served twice by the same version and track counts once (the newest
prediction), so a re-upload storm does not outvote the rest.
"""

from __future__ import annotations

import html
import json
import math
import tempfile
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aidetect import storage
from aidetect.decision import DecisionSpec
from aidetect.errors import AidetectError, DataError
from aidetect.feedback.config import FeedbackConfig, QualityConfig
from aidetect.feedback.labels import LabelLog, LabelRecord
from aidetect.feedback.policy import Resolved, resolve
from aidetect.monitoring.config import parse_duration
from aidetect.paths import home

# columns a log file written before the closed loop lacks: its rows cannot join (no sha256)
OPTIONAL_COLUMNS: dict[str, object] = {"sha256": "", "track": "stable"}
LATEST_FILE = "latest.json"


def resolved_labels(cfg: FeedbackConfig, labels: Sequence[str]) -> Resolved:
    """The one label per image that counts: the label log under the configured conflict policy, spelled
    as the model's ``labels`` (records naming another class are set aside)."""
    return resolve(LabelLog(cfg.labels.root).read(), cfg.labels, labels)


def reports_uri(cfg: QualityConfig) -> str:
    return cfg.reports_uri or str(home() / "quality")


def textfile_path() -> Path:
    return home() / "monitoring" / "quality.prom"


def join(window: pd.DataFrame, labels: Mapping[str, LabelRecord]) -> pd.DataFrame:
    """Logged rows of labelled images, with the label as ``target``; one row per (image, version, track)."""
    rows = window[window["sha256"].astype(str).isin(labels.keys())].copy()
    rows["target"] = [labels[s].label for s in rows["sha256"].astype(str)]
    rows["model_version"] = rows["model_version"].astype(str)
    rows["track"] = rows["track"].astype(str)
    rows["ts"] = pd.to_datetime(rows["ts"], utc=True)
    rows = rows.sort_values("ts").drop_duplicates(["sha256", "model_version", "track"], keep="last")
    return rows.reset_index(drop=True)


def _num(value: Any) -> float | None:
    """JSON-safe: NaN (a class nobody labelled) becomes None."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


@dataclass
class GroupQuality:
    """One (version, track): the gates' metrics over its labelled predictions."""

    version: str
    track: str
    n: int
    accuracy: float | None
    f1: float | None
    macro_f1: float | None
    ece: float | None
    precision: dict[str, float | None]
    recall: dict[str, float | None]
    confusion: list[list[int]]
    labels: list[str]
    status: str = "too few labels"  # ok | degraded | too few labels


def _probs(rows: pd.DataFrame, spec: DecisionSpec) -> np.ndarray:
    return rows[[f"p_{label}" for label in spec.labels]].to_numpy(dtype=np.float64)


def metrics_of(rows: pd.DataFrame, spec: DecisionSpec) -> dict[str, Any]:
    """``classification_metrics`` over joined rows (their ``p_<label>`` columns and ``target``)."""
    from aidetect.model.metrics import classification_metrics

    targets = np.array([spec.labels.index(t) for t in rows["target"]], dtype=np.int64)
    return classification_metrics(_probs(rows, spec), targets, spec)


def group_quality(
    version: str, track: str, rows: pd.DataFrame, spec: DecisionSpec, cfg: QualityConfig
) -> GroupQuality:
    m = metrics_of(rows, spec)
    g = GroupQuality(
        version=version,
        track=track,
        n=int(m["n"]),
        accuracy=_num(m["accuracy"]),
        f1=_num(m["f1"]),
        macro_f1=_num(m["macro_f1"]),
        ece=_num(m["ece"]),
        precision={c: _num(m[f"precision.{c}"]) for c in spec.labels},
        recall={c: _num(m[f"recall.{c}"]) for c in spec.labels},
        confusion=m["confusion"],
        labels=list(spec.labels),
    )
    if g.n >= cfg.min_labels:
        g.status = "degraded" if (g.f1 or 0.0) < cfg.min_f1 else "ok"
    return g


@dataclass
class LiveQuality:
    """Everything measured over one window (the verdict adds the judgement and where it went)."""

    groups: list[GroupQuality]
    over_time: list[dict[str, Any]]
    counts: dict[str, int]
    notes: list[str] = field(default_factory=list)
    rows: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict, repr=False)
    specs: dict[str, DecisionSpec] = field(default_factory=dict, repr=False)


def _usable(rows: pd.DataFrame, spec: DecisionSpec) -> pd.Series:
    cols = [f"p_{label}" for label in spec.labels]
    have = all(c in rows for c in cols)
    known = rows["target"].isin(spec.labels)
    return known & (rows[cols].notna().all(axis=1) if have else False)


def measure(joined: pd.DataFrame, spec_of: Callable[[str], DecisionSpec], cfg: QualityConfig) -> LiveQuality:
    """Per (version, track) metrics and their series over time buckets of prediction time."""
    bucket = pd.Timedelta(parse_duration(cfg.bucket, "quality.bucket"))
    out = LiveQuality([], [], {"joined": len(joined), "unknown_class": 0})
    for version in sorted(joined["model_version"].unique(), key=lambda v: (len(v), v)):
        try:
            spec = out.specs[version] = spec_of(version)
        except AidetectError as exc:
            out.notes.append(f"version {version}: skipped, its decision rule is unavailable ({exc})")
            continue
        of_version = joined[joined["model_version"] == version]
        ok = _usable(of_version, spec)
        out.counts["unknown_class"] += int((~ok).sum())
        for track, rows in of_version[ok].groupby("track", sort=True):
            rows = rows.reset_index(drop=True)
            out.rows[(version, str(track))] = rows
            out.groups.append(group_quality(version, str(track), rows, spec, cfg))
            for start, part in rows.groupby(rows["ts"].dt.floor(bucket), sort=True):
                m = metrics_of(part, spec)
                out.over_time.append(
                    {"start": start.isoformat(), "version": version, "track": str(track), "n": int(m["n"]),
                     "accuracy": _num(m["accuracy"]), "f1": _num(m["f1"])}
                )  # fmt: skip
    if out.counts["unknown_class"]:
        out.notes.append(
            f"{out.counts['unknown_class']} labelled prediction(s) skipped: the label is not one of the "
            "version's classes, or the row has no class probabilities"
        )
    return out


def judge(live: LiveQuality, version: str, cfg: QualityConfig) -> tuple[str, list[str]]:
    """``ok`` | ``degraded`` | ``insufficient`` for ``version``, and why."""
    mine = [g for g in live.groups if g.version == version]
    if not any(g.n >= cfg.min_labels for g in mine):
        most = max((g.n for g in mine), default=0)
        return "insufficient", [f"at most {most} labelled prediction(s) per track, {cfg.min_labels} needed"]
    reasons = [
        f"degradation: live F1 {g.f1 or 0.0:.3f} < {cfg.min_f1} over {g.n} labels (v{g.version}, {g.track})"
        for g in mine
        if g.status == "degraded"
    ]
    return ("degraded" if reasons else "ok"), reasons


def evidently_snapshot(rows: pd.DataFrame, spec: DecisionSpec) -> Any:
    """Evidently's classification preset (quality, per-class metrics, confusion matrix) for one group."""
    from evidently import BinaryClassification, DataDefinition, Dataset, MulticlassClassification, Report
    from evidently.presets import ClassificationPreset

    served = spec.names(spec.decide(_probs(rows, spec)))  # what the server answered, by the version's rule
    frame = pd.DataFrame({"target": rows["target"].astype(str).to_numpy(), "prediction": served})
    task: Any = (
        BinaryClassification(target="target", prediction_labels="prediction", pos_label=spec.fake_label)
        if spec.binary
        else MulticlassClassification(target="target", prediction_labels="prediction")
    )
    definition = DataDefinition(classification=[task], categorical_columns=["target", "prediction"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Report([ClassificationPreset()]).run(
            current_data=Dataset.from_pandas(frame, data_definition=definition)
        )


def report_html(rows: pd.DataFrame, spec: DecisionSpec, title: str, notes: list[str]) -> bytes:
    """Evidently's report for one group; a group Evidently cannot judge (one class only, so no TPR)
    gets a one-line page and a note instead of failing the check."""
    from aidetect.monitoring.drift import snapshot_html

    try:
        return snapshot_html(evidently_snapshot(rows, spec))
    except ValueError as exc:
        notes.append(f"{title}: no Evidently report ({exc})")
        text = html.escape(f"{title}: Evidently could not build a report over {len(rows)} rows: {exc}")
        return f"<!DOCTYPE html><html><body><p>{text}</p></body></html>\n".encode()


# -- one check end to end ----------------------------------------------------------------------------


def judged_version(model_name: str, ref: str) -> str:
    """A version number as is; an alias through the registry (an unknown alias is a DataError)."""
    if ref.isdigit():
        return ref
    from aidetect import registry

    version = registry.resolve_alias(model_name, ref)
    if version is None:
        raise DataError(f"model {model_name} has no alias {ref!r}")
    return str(version)


def bundle_of_registered(model_name: str) -> Callable[[str], Any]:
    """Version -> its registered ``serving/bundle.json`` (:class:`BundleSpec`), each fetched once."""
    from aidetect import registry
    from aidetect.serving.bundle import BUNDLE_FILE, REGISTRY_ARTIFACT_PATH, BundleSpec

    cache: dict[str, BundleSpec] = {}

    def get(version: str) -> BundleSpec:
        if version not in cache:
            with tempfile.TemporaryDirectory(prefix="aidetect-quality-") as tmp:
                try:
                    path = registry.download_artifacts(
                        model_name, version, f"{REGISTRY_ARTIFACT_PATH}/{BUNDLE_FILE}", tmp
                    )
                except AidetectError:
                    raise
                except Exception as exc:  # MLflow's own types for a missing artifact
                    raise DataError(f"model {model_name} v{version} has no serving bundle ({exc})") from None
                cache[version] = BundleSpec.from_json(Path(path).read_text())
        return cache[version]

    return get


def bundle_at(uri: str) -> Callable[[str], Any]:
    """Every version -> the ``bundle.json`` under ``uri`` (a folder or ``s3://`` prefix)."""
    from aidetect.serving.bundle import BUNDLE_FILE, BundleSpec

    spec = BundleSpec.from_json(storage.read_bytes(storage.join(uri, BUNDLE_FILE)).decode())
    return lambda version: spec


def run_check(
    model_name: str,
    version: str,
    cfg: FeedbackConfig,
    *,
    log_uri: str,
    bundles: Callable[[str], Any],
    now: datetime | None = None,
    retrain: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Measure, judge ``version``, export the metrics; publish the verdict (and Evidently's reports)
    unless there are too few labels (``status: insufficient``, nothing published, never a retrain).

    ``bundles(version)`` gives the served bundle spec (decision rule, dataset version) of a version;
    ``retrain(verdict)`` is called for a degraded verdict and its answer recorded in it."""
    from aidetect.monitoring.check import VERDICT_FILE, publish, verdict_head
    from aidetect.monitoring.window import read_window

    q = cfg.quality
    now = (now or datetime.now(UTC)).astimezone(UTC)
    since = parse_duration(q.since, "quality.since")
    judged = bundles(version)
    probability_columns = [f"p_{label}" for label in judged.decision.labels]
    window = read_window(
        log_uri, model_name, since=since, until=now, columns=probability_columns, optional=OPTIONAL_COLUMNS
    )
    resolved = resolved_labels(cfg, judged.decision.labels)
    live = measure(join(window, resolved.labels), lambda v: bundles(v).decision, q)
    live.counts.update(
        log_rows=len(window),
        labels=len(resolved.labels),
        conflicts=len(resolved.conflicts),
        unknown_labels=len(resolved.unknown),
    )
    if resolved.conflicts:
        live.notes.append(
            f"{len(resolved.conflicts)} image(s) with conflicting labels, resolved by "
            f"labels.conflict_policy={cfg.labels.conflict_policy}"
        )
    if resolved.unknown:
        live.notes.append(
            f"{len(resolved.unknown)} label record(s) name no class of the model "
            f"({', '.join(sorted({r.label for r in resolved.unknown})[:5])}): not counted"
        )
    status, reasons = judge(live, version, q)
    verdict: dict[str, Any] = {
        **verdict_head(model_name, version, judged.dataset_version, now, q.since, log_uri),
        "status": status,
        "degraded": status == "degraded",
        "reasons": reasons,
        "thresholds": {"min_labels": q.min_labels, "min_f1": q.min_f1, "bucket": q.bucket},
        "counts": live.counts,
        "groups": [asdict(g) for g in live.groups],
        "over_time": live.over_time,
        "notes": live.notes,
        "retrain": None,
    }
    if status == "insufficient":  # no verdict; the metrics still say how many labels there are
        _export(verdict, q, now)
        return verdict
    stamp = f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    folder = storage.join(reports_uri(q), model_name, stamp)
    verdict["verdict_uri"] = storage.join(
        folder, VERDICT_FILE
    )  # known before publishing: the retrain cites it
    if status == "degraded" and retrain is not None:
        try:
            verdict["retrain"] = retrain(verdict)
        except AidetectError as exc:  # recorded with the verdict; the verdict itself still stands
            verdict["retrain"] = {"action": "failed", "reason": str(exc)}
    files, verdict["reports"] = {}, {}
    for (v, track), rows in live.rows.items():
        if v == version:
            name = f"report-{track}.html"
            files[name] = report_html(rows, live.specs[v], f"{model_name} v{v} ({track})", live.notes)
            verdict["reports"][track] = storage.join(folder, name)
    verdict["report_uri"] = next(iter(verdict["reports"].values()), "")
    root = reports_uri(q)
    latest = [
        storage.join(root, model_name, version, LATEST_FILE),
        storage.join(root, model_name, LATEST_FILE),
    ]
    verdict = publish(folder, verdict, files, latest)
    _export(verdict, q, now)  # after publishing, as drift does: a Pushgateway outage loses no verdict
    return verdict


def _export(verdict: dict[str, Any], q: QualityConfig, now: datetime) -> None:
    """The live metrics: the textfile always, the Pushgateway when configured."""
    from aidetect.monitoring import exposition

    name = verdict["model_name"]
    reg = exposition.quality_registry(
        name, verdict["groups"], min_f1=q.min_f1, min_labels=q.min_labels, checked_at=now.timestamp()
    )
    exposition.write_textfile(reg, textfile_path())
    if q.pushgateway_url:
        exposition.push_quality(reg, q.pushgateway_url, q.metrics_job, name)


def read_latest(cfg: QualityConfig, model_name: str, version: str | None = None) -> dict[str, Any] | None:
    """The newest published verdict for a model (or one judged version of it), or ``None``."""
    parts = [model_name, version, LATEST_FILE] if version else [model_name, LATEST_FILE]
    uri = storage.join(reports_uri(cfg), *parts)
    return json.loads(storage.read_bytes(uri)) if storage.exists(uri) else None
