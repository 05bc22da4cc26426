"""Validate a dataset version with a Great Expectations suite over its manifest plus a decode check.

The suite runs in an ephemeral GX context on a pandas frame: the manifest plus derived columns
(``decode_error``, ``splits_per_image``, ``labels_per_image``, one ``share__<label>`` indicator per
label). Each expectation carries ``meta = {"name", "severity"}``; a failed ``critical`` one fails the
validation, a failed ``warning`` one is reported only.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from aidetect import storage
from aidetect.data.config import CRITICAL, WARNING, ValidationConfig, load_validation_config
from aidetect.data.imaging import ImageDecodeError, decode_rgb
from aidetect.data.versions import DatasetVersion, open_version
from aidetect.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class ValidationResult:
    """The outcome: per-expectation results plus duplicate and decode findings."""

    version_id: str
    success: bool
    expectations: list[dict[str, Any]]
    duplicates: dict[str, Any]
    decode: dict[str, Any]
    counts: dict[str, dict[str, int]]
    seconds: float = 0.0
    derived_version: str | None = None

    @property
    def critical_failures(self) -> list[dict[str, Any]]:
        return [e for e in self.expectations if not e["success"] and e["severity"] == CRITICAL]

    @property
    def warnings(self) -> list[dict[str, Any]]:
        return [e for e in self.expectations if not e["success"] and e["severity"] == WARNING]

    def summary_metrics(self) -> dict[str, float]:
        """Counts a pipeline UI shows beside the report."""
        return {
            "expectations_failed": float(sum(1 for e in self.expectations if not e["success"])),
            "warnings": float(len(self.warnings)),
            "duplicate_rows": float(self.duplicates.get("rows", 0) or 0),
            "decode_failures": float(self.decode.get("failed", 0)),
        }

    def to_dict(self) -> dict[str, Any]:
        import great_expectations as gx

        return {
            "version_id": self.version_id,
            "success": self.success,
            "critical_failures": [e["name"] for e in self.critical_failures],
            "warnings": [e["name"] for e in self.warnings],
            "expectations": self.expectations,
            "duplicates": self.duplicates,
            "decode": self.decode,
            "counts": self.counts,
            "derived_version": self.derived_version,
            "seconds": round(self.seconds, 2),
            "great_expectations": gx.__version__,
        }

    def failure_message(self) -> str:
        """One line naming each failed critical expectation with example rows."""
        parts = []
        for e in self.critical_failures:
            ex = ", ".join(_example_text(x) for x in e["examples"][:3])
            parts.append(
                f"{e['name']} ({e.get('unexpected_count', 'n/a')} rows{'; e.g. ' + ex if ex else ''})"
            )
        return f"dataset version {self.version_id} failed validation: " + "; ".join(parts)

    def raise_for_critical(self) -> None:
        if not self.success:
            raise DataError(self.failure_message())


def _example_text(example: Any) -> str:
    if isinstance(example, dict):
        return " ".join(f"{k}={v}" for k, v in example.items())
    return str(example)


# -- decode check ---------------------------------------------------------------------------------


def _decode_rows(
    images: Any, positions: list[int], rows: list[int], shas: list[str]
) -> list[tuple[int, str]]:
    """Decode each row's bytes and check them against the manifest digest."""
    errors = []
    for pos, r, sha in zip(positions, rows, shas, strict=True):
        data = images[r].as_py()
        if hashlib.sha256(data).hexdigest() != sha:
            errors.append((pos, "stored bytes do not match the manifest sha256"))
            continue
        try:
            decode_rgb(data)
        except ImageDecodeError as exc:
            errors.append((pos, str(exc)))
    return errors


def _decode_local_shard(args: tuple[str, list[int], list[int], list[str]]) -> list[tuple[int, str]]:
    """Decode the given rows of one local shard; return ``(manifest position, error)`` for failures."""
    import pyarrow.parquet as pq

    path, positions, rows, shas = args
    return _decode_rows(pq.read_table(path, columns=["image"]).column("image"), positions, rows, shas)


def decode_check(version: DatasetVersion, sample: int = 0, workers: int = 2) -> tuple[pd.Series, int]:
    """``(decode_error column, rows checked)``: None where the image decodes (or was not sampled)."""
    m = version.manifest.reset_index(drop=True)
    idx = np.arange(len(m))
    if sample and sample < len(m):
        idx = np.sort(np.random.default_rng(0).choice(len(m), size=sample, replace=False))
    picked = m.iloc[idx]
    groups = [
        (str(shard), list(g.index), list(g["row"]), list(g["sha256"]))
        for shard, g in picked.groupby("shard", sort=True)
    ]
    errors: list[tuple[int, str]] = []
    if storage.is_s3(version.uri):
        for shard, positions, rows, shas in groups:
            errors.extend(_decode_rows(version._read_shard(shard).column("image"), positions, rows, shas))
    else:
        jobs = [(storage.join(version.uri, "shards", g[0]), *g[1:]) for g in groups]
        n = min(workers, len(jobs), os.cpu_count() or 1)
        if n > 1:
            with ProcessPoolExecutor(max_workers=n) as pool:
                for found in pool.map(_decode_local_shard, jobs):
                    errors.extend(found)
        else:
            for job in jobs:
                errors.extend(_decode_local_shard(job))
    out = pd.Series([None] * len(m), dtype=object)
    for pos, err in errors:
        out.iloc[pos] = err
    return out, len(idx)


# -- the suite ------------------------------------------------------------------------------------


def _frame(version: DatasetVersion, decode_errors: pd.Series) -> pd.DataFrame:
    """The manifest plus the derived columns the expectations look at."""
    m = version.manifest.reset_index(drop=True)
    df = m[["sha256", "label", "split", "source", "width", "height", "mode", "format", "nbytes"]].copy()
    df["decode_error"] = decode_errors.values
    by_sha = df.groupby("sha256")
    df["splits_per_image"] = by_sha["split"].transform("nunique").astype(int)
    df["labels_per_image"] = by_sha["label"].transform("nunique").astype(int)
    for i, label in enumerate(version.labels):
        df[f"share__{i}"] = (df["label"] == label).astype(float)
    if "provenance" in m:  # a grown version (aidetect.feedback.grow)
        df["is_feedback"] = (m["provenance"] == "feedback").astype(float)
    return df


def build_suite(labels: list[str], cfg: ValidationConfig, grown: bool = False) -> list[tuple[str, str, Any]]:
    """``(name, severity, expectation)`` for every check, in report order (``grown``: the feedback share
    of a grown version too)."""
    import great_expectations.expectations as gxe

    dup_severity = CRITICAL if cfg.duplicates == "fail" else WARNING
    checks: list[tuple[str, str, Any]] = [
        ("has images", CRITICAL, gxe.ExpectTableRowCountToBeBetween(min_value=1)),
        ("decodable", CRITICAL, gxe.ExpectColumnValuesToBeNull(column="decode_error")),
        (
            "allowed modes",
            CRITICAL,
            gxe.ExpectColumnValuesToBeInSet(column="mode", value_set=cfg.allowed_modes),
        ),
        (
            "width within bounds",
            CRITICAL,
            gxe.ExpectColumnValuesToBeBetween(column="width", min_value=cfg.min_side, max_value=cfg.max_side),
        ),
        (
            "height within bounds",
            CRITICAL,
            gxe.ExpectColumnValuesToBeBetween(
                column="height", min_value=cfg.min_side, max_value=cfg.max_side
            ),
        ),
        ("label set", CRITICAL, gxe.ExpectColumnValuesToBeInSet(column="label", value_set=list(labels))),
    ]
    for i, label in enumerate(labels):
        exp = gxe.ExpectColumnMeanToBeBetween(
            column=f"share__{i}", min_value=cfg.min_class_share, max_value=cfg.max_class_share
        )
        checks.append((f"class balance {label}", cfg.balance_severity, exp))
    checks += [
        ("no duplicate images", dup_severity, gxe.ExpectColumnValuesToBeUnique(column="sha256")),
        (
            "no image in two splits",
            CRITICAL,
            gxe.ExpectColumnValuesToBeInSet(column="splits_per_image", value_set=[1]),
        ),
        (
            "no image with two labels",
            CRITICAL,
            gxe.ExpectColumnValuesToBeInSet(column="labels_per_image", value_set=[1]),
        ),
        (
            "required splits present",
            WARNING,
            gxe.ExpectColumnDistinctValuesToContainSet(column="split", value_set=list(cfg.required_splits)),
        ),
    ]
    if grown:
        for severity, limit in ((WARNING, cfg.feedback_share_warn), (CRITICAL, cfg.feedback_share_critical)):
            exp = gxe.ExpectColumnMeanToBeBetween(column="is_feedback", min_value=0.0, max_value=limit)
            checks.append((f"feedback share <= {limit:g}", severity, exp))
    for name, severity, exp in checks:
        exp.meta = {"name": name, "severity": severity}
    return checks


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def run_suite(frame: pd.DataFrame, labels: list[str], cfg: ValidationConfig) -> list[dict[str, Any]]:
    """Run the suite on ``frame`` in an ephemeral GX context; one plain dict per expectation."""
    return run_checks(frame, build_suite(labels, cfg, "is_feedback" in frame), cfg.examples)


def run_checks(
    frame: pd.DataFrame, checks: list[tuple[str, str, Any]], examples: int, index_column: str = "source"
) -> list[dict[str, Any]]:
    """Run ``(name, severity, expectation)`` checks on ``frame`` in an ephemeral GX context (any modality);
    failed rows are named by ``index_column``."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("aidetect").add_dataframe_asset("manifest")
    batch = asset.add_batch_definition_whole_dataframe("whole").get_batch(
        batch_parameters={"dataframe": frame}
    )
    suite = gx.ExpectationSuite(name="aidetect-dataset")
    for name, severity, exp in checks:
        exp.meta = {"name": name, "severity": severity}
        suite.add_expectation(exp)
    result_format = {
        "result_format": "SUMMARY",
        "unexpected_index_column_names": [index_column],
        "partial_unexpected_count": examples,
    }
    run = batch.validate(suite, result_format=result_format)
    by_name = {r.expectation_config.meta["name"]: r for r in run.results}
    out = []
    for name, severity, exp in checks:
        r = by_name[name]
        res = r.result or {}
        entry: dict[str, Any] = {
            "name": name,
            "severity": severity,
            "expectation": exp.expectation_type,
            "kwargs": {k: v for k, v in exp.configuration.kwargs.items() if k not in {"result_format"}},
            "success": bool(r.success),
        }
        if r.exception_info and r.exception_info.get("raised_exception"):
            entry["success"] = False
            entry["error"] = str(r.exception_info.get("exception_message"))
        if "observed_value" in res:
            entry["observed_value"] = res["observed_value"]
        if "unexpected_count" in res:
            entry["unexpected_count"] = res["unexpected_count"]
        found = res.get("partial_unexpected_index_list") or res.get("partial_unexpected_list") or []
        entry["examples"] = found[:examples]
        out.append(_jsonable(entry))
    return out


def find_duplicates(manifest: pd.DataFrame, examples: int) -> dict[str, Any]:
    """Groups of rows with byte-identical images: counts and example groups (their sources)."""
    dup = manifest[manifest.duplicated("sha256", keep=False)]
    groups = dup.groupby("sha256", sort=False)["source"].apply(list)
    sizes = groups.map(len)
    return {
        "groups": len(groups),
        "pairs": int((sizes == 2).sum()),
        "rows": len(dup),
        "extra_copies": int(len(dup) - len(groups)),
        "examples": [sorted(g) for g in groups.head(examples)],
    }


def validate_version(
    version: str | DatasetVersion, root: str | None = None, config: ValidationConfig | None = None
) -> ValidationResult:
    """Run the suite on ``version`` (an id, prefix or opened version).

    With ``duplicates: drop`` and duplicates present, a version without the extra copies is derived
    (content-addressed like any other) and it is that version which is validated and returned.
    """
    cfg = config or load_validation_config()
    started = time.perf_counter()
    v = version if isinstance(version, DatasetVersion) else open_version(version, root)
    duplicates = find_duplicates(v.manifest, cfg.examples)
    duplicates["policy"] = cfg.duplicates
    if cfg.duplicates == "drop" and duplicates["rows"]:
        from aidetect.data.versions import derive_version

        keep = ~v.manifest.duplicated("sha256", keep="first")
        derived = derive_version(v, keep, note=f"dropped {duplicates['extra_copies']} duplicate copies")
        result = validate_version(derived, config=cfg)
        result.duplicates = {**duplicates, "dropped": duplicates["extra_copies"], "parent": v.version_id}
        result.derived_version = derived.version_id
        result.seconds = time.perf_counter() - started
        return result
    mode = cfg.decode_check
    if mode == "auto":
        mode = "sample" if v.meta.get("verify_decode") else "all"
    errors, checked = decode_check(v, cfg.decode_sample if mode == "sample" else 0, cfg.decode_workers)
    frame = _frame(v, errors)
    expectations = run_suite(frame, v.labels, cfg)
    failed = errors.dropna()
    decode = {
        "mode": mode,
        "checked": checked,
        "failed": len(failed),
        "examples": [
            {"source": v.manifest["source"].iloc[i], "error": e} for i, e in failed.head(cfg.examples).items()
        ],
    }
    success = not any(not e["success"] and e["severity"] == CRITICAL for e in expectations)
    return ValidationResult(
        version_id=v.version_id,
        success=success,
        expectations=expectations,
        duplicates=duplicates,
        decode=decode,
        counts=v.counts(),
        seconds=time.perf_counter() - started,
    )
