"""Data and prediction drift between a reference profile and a window of logged rows (Evidently).

Evidently decides per column whether it drifted (its stat test against the configured threshold);
this module turns that into one verdict an operator can act on:

- data drift: at least ``drift_share`` of the features drifted, or any ``critical_features`` drifted;
- prediction drift: the model output column drifted;
- drift = data drift or prediction drift.

Too few rows never produce a verdict: :class:`InsufficientDataError` is raised instead, so a quiet
hour or a broken logger cannot raise a drift alarm (or launch a retrain).
"""

from __future__ import annotations

import math
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from aidetect.errors import ConfigError, DataError
from aidetect.monitoring.config import DriftConfig


class InsufficientDataError(DataError):
    """The window holds fewer usable rows than ``min_rows``: no verdict (exit code 3)."""

    exit_code = 3


@dataclass
class ColumnDrift:
    """One column's test: Evidently's score (a p-value or a distance) and whether it drifted."""

    column: str
    method: str
    score: float
    threshold: float
    drifted: bool

    @property
    def strength(self) -> float:
        """How far past the threshold, on a scale where 1.0 is the boundary and higher is more drift."""
        is_p_value = (self.score < self.threshold) == self.drifted
        if is_p_value:
            p = min(max(self.score, 1e-300), 1.0)
            return math.log(p) / math.log(self.threshold) if self.threshold < 1 else 0.0
        return self.score / self.threshold if self.threshold > 0 else 0.0


@dataclass
class DriftResult:
    """The outcome of one comparison (everything but the HTML)."""

    rows_reference: int
    rows_current: int
    features: list[ColumnDrift]
    prediction: ColumnDrift | None
    drift_share: float
    drifted_features: list[str]
    critical_drifted: list[str]
    data_drift: bool
    prediction_drift: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def drift_detected(self) -> bool:
        return self.data_drift or self.prediction_drift

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["drift_detected"] = self.drift_detected
        for item in [*out["features"], *([out["prediction"]] if out["prediction"] else [])]:
            item["strength"] = ColumnDrift(**{k: item[k] for k in ColumnDrift.__dataclass_fields__}).strength
        return out


def _usable(df: pd.DataFrame, columns: list[str], where: str) -> pd.DataFrame:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{where} lacks column(s) {', '.join(missing)}")
    out = df[columns].apply(pd.to_numeric, errors="coerce").astype("float64")
    empty = [c for c in columns if out[c].isna().all()] if len(out) else []
    if empty:
        raise DataError(f"{where}: column(s) {', '.join(empty)} hold no values")
    # a row with a missing value (its feature extraction failed) is not evidence either way
    out = out.dropna(how="any").reset_index(drop=True)
    return out


def _evidently_run(reference: pd.DataFrame, current: pd.DataFrame, cfg: DriftConfig, with_prediction: bool):
    from evidently import DataDefinition, Dataset, Report
    from evidently.legacy.calculations.stattests.registry import (
        StatTestInvalidFeatureTypeError,
        StatTestNotFoundError,
    )
    from evidently.metrics import DriftedColumnsCount, ValueDrift

    columns = list(cfg.features) + ([cfg.prediction_column] if with_prediction else [])
    definition = DataDefinition(numerical_columns=columns)
    # DriftedColumnsCount gives the report its share summary; one ValueDrift per column gives the
    # per-column scores and plots. (DataDriftPreset computes the same tests twice more: ~2x slower.)
    metrics: list[Any] = [
        DriftedColumnsCount(
            columns=list(cfg.features),
            drift_share=cfg.drift_share,
            num_method=cfg.method,
            num_threshold=cfg.threshold,
        ),
        *(ValueDrift(column=c, method=cfg.method, threshold=cfg.threshold) for c in cfg.features),
    ]
    if with_prediction:
        metrics.append(
            ValueDrift(
                column=cfg.prediction_column, method=cfg.prediction_method, threshold=cfg.prediction_threshold
            )
        )
    report = Report(metrics, include_tests=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return report.run(
                current_data=Dataset.from_pandas(current, data_definition=definition),
                reference_data=Dataset.from_pandas(reference, data_definition=definition),
            )
    except (StatTestNotFoundError, StatTestInvalidFeatureTypeError) as exc:
        raise ConfigError(f"method: {exc}") from None


def _column_results(snapshot_dict: dict[str, Any]) -> dict[str, ColumnDrift]:
    """Per-column score, method, threshold and Evidently's own drift decision."""
    status = {
        t["metric_config"]["metric_id"]: t["status"]
        for t in snapshot_dict.get("tests", [])
        if t.get("id") == "drift"
    }
    out: dict[str, ColumnDrift] = {}
    for m in snapshot_dict["metrics"]:
        conf = m["config"]
        if not conf.get("type", "").endswith(":ValueDrift") or m["id"] not in status:
            continue
        out[conf["column"]] = ColumnDrift(
            column=conf["column"],
            method=str(conf.get("method")),
            score=float(m["value"]),
            threshold=float(conf.get("threshold")),
            drifted=status[m["id"]] == "FAIL",
        )
    return out


def compare(
    reference: pd.DataFrame, current: pd.DataFrame, cfg: DriftConfig, *, seed: int = 0
) -> tuple[DriftResult, Any]:
    """Compare ``current`` against ``reference``; returns the result and the Evidently snapshot.

    The prediction column is tested when both frames have it. Raises :class:`InsufficientDataError`
    below ``cfg.min_rows`` usable rows and :class:`DataError` when feature columns are missing.
    """
    with_prediction = cfg.prediction_column in reference.columns
    columns = list(cfg.features) + ([cfg.prediction_column] if with_prediction else [])
    ref = _usable(reference, columns, "reference profile")
    if len(ref) < cfg.min_reference_rows:
        raise DataError(
            f"reference profile has {len(ref)} usable rows, fewer than min_reference_rows="
            f"{cfg.min_reference_rows}: rebuild it on a larger split"
        )
    cur = _usable(current, columns, "inference-log window") if len(current) else current
    if len(cur) < cfg.min_rows:
        raise InsufficientDataError(
            f"the window has {len(cur)} usable rows, fewer than min_rows={cfg.min_rows}: no verdict",
            hint="widen --since or lower min_rows; a thin window never raises a drift alarm",
        )
    if len(cur) > cfg.max_rows:
        cur = cur.sample(n=cfg.max_rows, random_state=seed).reset_index(drop=True)
    snapshot = _evidently_run(ref, cur, cfg, with_prediction)
    by_column = _column_results(snapshot.dict())
    lost = [c for c in columns if c not in by_column]
    if lost:
        raise DataError(f"Evidently returned no drift test for column(s) {', '.join(lost)}")
    features = [by_column[c] for c in cfg.features]
    drifted = [f.column for f in features if f.drifted]
    share = len(drifted) / len(features)
    critical = [c for c in cfg.critical_features if c in drifted]
    prediction = by_column.get(cfg.prediction_column) if with_prediction else None
    reasons = []
    if share >= cfg.drift_share:
        reasons.append(
            f"{len(drifted)}/{len(features)} features drifted (share {share:.2f} >= {cfg.drift_share})"
        )
    if critical:
        reasons.append(f"critical feature(s) drifted: {', '.join(critical)}")
    if prediction is not None and prediction.drifted:
        reasons.append(
            f"prediction drift in {prediction.column} ({prediction.method} score {prediction.score:.3g})"
        )
    result = DriftResult(
        rows_reference=len(ref),
        rows_current=len(cur),
        features=features,
        prediction=prediction,
        drift_share=share,
        drifted_features=drifted,
        critical_drifted=critical,
        data_drift=share >= cfg.drift_share or bool(critical),
        prediction_drift=bool(prediction and prediction.drifted),
        reasons=reasons,
    )
    return result, snapshot


def snapshot_html(snapshot: Any) -> bytes:
    """The Evidently HTML report as bytes (rendered through a temporary file)."""
    with tempfile.TemporaryDirectory(prefix="aidetect-drift-") as tmp:
        path = Path(tmp) / "report.html"
        snapshot.save_html(str(path))
        return path.read_bytes()
