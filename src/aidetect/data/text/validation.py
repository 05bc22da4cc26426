"""Validate a text dataset version with a Great Expectations suite (the image suite's runner).

The frame is the manifest plus derived columns: text statistics (``mojibake``, dominant ``script``),
``splits_per_text``/``labels_per_text`` (one text in two splits or with two labels), ``splits_per_group``
(rewrites of one original straddling splits) and near-duplicate flags from MinHash on a bounded sample.
Failed rows are named by ``where`` (``row N`` / ``line N`` of the source).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aidetect import config
from aidetect.data.config import SPLITS
from aidetect.data.text.features import dominant_script, text_features
from aidetect.data.text.near_dups import near_duplicate_pairs
from aidetect.data.text.versions import open_text_version, read_texts
from aidetect.data.validation import CRITICAL, WARNING, ValidationResult, run_checks
from aidetect.data.versions import DatasetVersion
from aidetect.errors import ConfigError


@dataclass
class TextValidationConfig:
    """Bounds and policies of the text suite (``configs/text_validation.yaml``)."""

    min_chars: int = 20  # shorter texts are flagged (warning): too little signal to judge
    max_bytes: int = 100_000
    min_class_share: float = 0.1
    max_class_share: float = 0.9
    balance_severity: str = WARNING
    duplicates: str = "warn"  # warn | fail
    near_dup_threshold: float = 0.8  # estimated Jaccard of word 3-gram shingles
    near_dup_sample: int = 5000  # texts checked for near-duplicates (a deterministic sample)
    near_dup_cross_split_severity: str = WARNING
    scripts: list[str] = field(default_factory=lambda: ["latin"])  # expected dominant scripts
    script_mostly: float = 0.98
    required_splits: list[str] = field(default_factory=lambda: ["train", "val"])
    examples: int = 5

    def validate(self) -> None:
        for name in ("balance_severity", "near_dup_cross_split_severity"):
            if getattr(self, name) not in {CRITICAL, WARNING}:
                raise ConfigError(f"{name}: expected critical or warning, got {getattr(self, name)!r}")
        if self.duplicates not in {"warn", "fail"}:
            raise ConfigError(f"duplicates: expected warn or fail, got {self.duplicates!r}")
        if not 0 <= self.min_class_share <= self.max_class_share <= 1:
            raise ConfigError("min_class_share/max_class_share: need 0 <= min <= max <= 1")
        if not 0 < self.near_dup_threshold <= 1 or not 0 < self.script_mostly <= 1:
            raise ConfigError("near_dup_threshold and script_mostly: must be in (0, 1]")
        if self.min_chars < 0 or self.max_bytes < 1 or self.near_dup_sample < 2 or self.examples < 1:
            raise ConfigError("min_chars >= 0, max_bytes >= 1, near_dup_sample >= 2, examples >= 1")
        bad = sorted(set(self.required_splits) - set(SPLITS))
        if bad:
            raise ConfigError(f"required_splits: unknown split {bad[0]!r}")


def load_text_validation_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> TextValidationConfig:
    return config.load(TextValidationConfig, "text_validation", path=path, overrides=overrides)


def _near_dups(
    texts: list[str], m: pd.DataFrame, cfg: TextValidationConfig
) -> tuple[pd.Series, pd.Series, dict]:
    """Per-row flags (near-duplicate of another row; of a row in another split) and a summary."""
    n = len(texts)
    idx = np.arange(n)
    if n > cfg.near_dup_sample:
        idx = np.sort(np.random.default_rng(0).choice(n, cfg.near_dup_sample, replace=False))
    pairs = near_duplicate_pairs([texts[i] for i in idx], cfg.near_dup_threshold)
    near = np.zeros(n, dtype=bool)
    cross = np.zeros(n, dtype=bool)
    split = m["split"].to_numpy()
    sha = m["sha256"].to_numpy()
    examples = []
    kept = 0
    for a, b, sim in pairs:
        i, j = int(idx[a]), int(idx[b])
        if sha[i] == sha[j]:
            continue  # exact copies are the duplicates check's business
        kept += 1
        near[[i, j]] = True
        if split[i] != split[j]:
            cross[[i, j]] = True
        if len(examples) < cfg.examples:
            examples.append({"rows": [m["where"].iloc[i], m["where"].iloc[j]], "similarity": round(sim, 3)})
    summary = {
        "checked": len(idx),
        "pairs": kept,
        "cross_split_rows": int(cross.sum()),
        "threshold": cfg.near_dup_threshold,
        "examples": examples,
    }
    return pd.Series(near), pd.Series(cross), summary


def _frame(version: DatasetVersion, texts: list[str], cfg: TextValidationConfig) -> tuple[pd.DataFrame, dict]:
    m = version.manifest.reset_index(drop=True)
    df = m[["where", "sha256", "label", "split", "group", "nchars", "nbytes"]].copy()
    feats = [text_features(t) for t in texts]
    df["mojibake"] = [f["mojibake"] for f in feats]
    df["script"] = [dominant_script(f) for f in feats]
    by_sha = df.groupby("sha256")
    df["splits_per_text"] = by_sha["split"].transform("nunique").astype(int)
    df["labels_per_text"] = by_sha["label"].transform("nunique").astype(int)
    groups = df["group"].fillna(df["sha256"])
    df["splits_per_group"] = df.groupby(groups)["split"].transform("nunique").astype(int)
    for i, label in enumerate(version.labels):
        df[f"share__{i}"] = (df["label"] == label).astype(float)
    df["near_dup"], df["near_dup_cross_split"], summary = _near_dups(texts, m, cfg)
    summary["scripts"] = {str(k): int(v) for k, v in df["script"].value_counts().items()}
    return df, summary


def build_text_suite(labels: list[str], cfg: TextValidationConfig) -> list[tuple[str, str, Any]]:
    """``(name, severity, expectation)`` for every check, in report order."""
    import great_expectations.expectations as gxe

    def values_in(column: str, values: list[Any], **kw: Any) -> Any:
        return gxe.ExpectColumnValuesToBeInSet(column=column, value_set=values, **kw)

    checks: list[tuple[str, str, Any]] = [
        ("has texts", CRITICAL, gxe.ExpectTableRowCountToBeBetween(min_value=1)),
        ("label set", CRITICAL, values_in("label", list(labels))),
        ("not empty", CRITICAL, gxe.ExpectColumnValuesToBeBetween(column="nchars", min_value=1)),
        (
            "not too long",
            CRITICAL,
            gxe.ExpectColumnValuesToBeBetween(column="nbytes", max_value=cfg.max_bytes),
        ),
        ("long enough", WARNING, gxe.ExpectColumnValuesToBeBetween(column="nchars", min_value=cfg.min_chars)),
        ("no encoding errors", WARNING, values_in("mojibake", [0.0])),
        ("expected scripts", WARNING, values_in("script", list(cfg.scripts), mostly=cfg.script_mostly)),
    ]
    for i, label in enumerate(labels):
        exp = gxe.ExpectColumnMeanToBeBetween(
            column=f"share__{i}", min_value=cfg.min_class_share, max_value=cfg.max_class_share
        )
        checks.append((f"class balance {label}", cfg.balance_severity, exp))
    dup = CRITICAL if cfg.duplicates == "fail" else WARNING
    checks += [
        ("no duplicate texts", dup, gxe.ExpectColumnValuesToBeUnique(column="sha256")),
        ("no text in two splits", CRITICAL, values_in("splits_per_text", [1])),
        ("no text with two labels", CRITICAL, values_in("labels_per_text", [1])),
        ("no group in two splits", CRITICAL, values_in("splits_per_group", [1])),
        ("no near-duplicates", WARNING, values_in("near_dup", [False])),
        (
            "no near-duplicates across splits",
            cfg.near_dup_cross_split_severity,
            values_in("near_dup_cross_split", [False]),
        ),
        (
            "required splits present",
            WARNING,
            gxe.ExpectColumnDistinctValuesToContainSet(column="split", value_set=list(cfg.required_splits)),
        ),
    ]
    return checks


def validate_text_version(
    version: str | DatasetVersion, root: str | None = None, config: TextValidationConfig | None = None
) -> ValidationResult:
    """Run the text suite on ``version`` (an id, prefix or opened text version)."""
    cfg = config or load_text_validation_config()
    started = time.perf_counter()
    v = version if isinstance(version, DatasetVersion) else open_text_version(version, root)
    texts = read_texts(v)
    frame, near = _frame(v, texts, cfg)
    expectations = run_checks(frame, build_text_suite(v.labels, cfg), cfg.examples, index_column="where")
    dup = v.manifest[v.manifest.duplicated("sha256", keep=False)]
    sizes = dup.groupby("sha256").size()
    duplicates = {
        "policy": cfg.duplicates,
        "groups": len(sizes),
        "pairs": int((sizes == 2).sum()),
        "rows": len(dup),
        "extra_copies": int(len(dup) - dup["sha256"].nunique()),
        "examples": [sorted(g) for g in dup.groupby("sha256")["where"].apply(list).head(cfg.examples)],
        "near": near,
    }
    success = not any(not e["success"] and e["severity"] == CRITICAL for e in expectations)
    return ValidationResult(
        version_id=v.version_id,
        success=success,
        expectations=expectations,
        duplicates=duplicates,
        decode={"mode": "utf-8 checked at ingest", "checked": len(texts), "failed": 0, "examples": []},
        counts=v.counts(),
        seconds=time.perf_counter() - started,
    )
