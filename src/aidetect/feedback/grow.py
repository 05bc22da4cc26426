"""Datasets that grow: a base version plus reviewers' labelled production images becomes a new version.

The new version is content-addressed like any other (:mod:`aidetect.data.versions` gives the id and
publishes it atomically, so a refused or crashed grow leaves nothing behind). Splits never leak: an
image already in the base keeps its split, and a new image is placed by its sha256 with the base's own
rule (:func:`aidetect.data.splits.pick` over the base's split fractions), so the same image lands in
the same split whichever version it joins. Every row says where it came from: ``provenance``
(``base`` | ``feedback``), ``label_source`` (the label record's source) and ``feedback_batch``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aidetect import storage
from aidetect.data import splits, versions
from aidetect.data.config import SPLITS, load_data_config
from aidetect.data.examine import examine
from aidetect.errors import DataError
from aidetect.feedback.config import FeedbackConfig, GrowConfig, LabelsConfig
from aidetect.feedback.labels import LabelLog, LabelRecord

log = logging.getLogger(__name__)

PROVENANCE_COLUMNS = ["provenance", "label_source", "feedback_batch"]
BASE, FEEDBACK = "base", "feedback"
MAX_LISTED = 200


def load_feedback_config(path: str | None = None, overrides: dict[str, Any] | None = None) -> FeedbackConfig:
    from aidetect import config

    cfg = config.load(FeedbackConfig, "feedback", path=path, overrides=overrides)
    cfg.validate()
    return cfg


def store_uri(cfg: FeedbackConfig) -> str:
    """Where kept images live: ``capture.store_uri``, default ``$AIDETECT_HOME/captured``."""
    from aidetect.feedback.capture import default_root

    return cfg.capture.store_uri or default_root()


def resolved_labels(
    log_root: str, cfg: LabelsConfig, labels: list[str]
) -> tuple[dict[str, LabelRecord], list[dict[str, Any]], list[dict[str, str]]]:
    """The one label per image that training sees (by the configured conflict policy,
    :func:`aidetect.feedback.policy.resolve`), the reviewers' disagreements, and the records naming a
    class outside ``labels`` (as skips)."""
    from aidetect.feedback.policy import resolve

    res = resolve(LabelLog(log_root).read(), cfg, labels=labels)
    unknown = [{"sha256": r.sha256, "reason": f"unknown class {r.label!r}"} for r in res.unknown]
    return dict(res.labels), list(res.report()["details"]), unknown


def _read_image(store: str, sha256: str) -> bytes | None:
    """The kept bytes of ``sha256`` in the capture store, or None when it lacks them."""
    from aidetect.feedback.capture import ImageStore

    try:
        return ImageStore(store).get(sha256)
    except DataError:
        return None


@dataclass
class GrowReport:
    """What a grow did: the new version, what joined, what was skipped or disagreed, and why."""

    base: str
    version_id: str = ""
    uri: str = ""
    created: bool = False
    feedback_batch: str = ""
    added: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> label -> new images
    already_in_base: int = 0
    relabelled: int = 0
    feedback_rows: int = 0  # rows with provenance feedback in the new version (this batch and earlier)
    feedback_share: float = 0.0
    skipped: list[dict[str, str]] = field(default_factory=list)  # sha256, reason
    conflicts: list[dict[str, Any]] = field(default_factory=list)  # with the base, and among reviewers

    @property
    def num_added(self) -> int:
        return sum(sum(v.values()) for v in self.added.values())

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "num_added": self.num_added}


def _class_of(label: str, labels: list[str]) -> str | None:
    if label in labels:
        return label
    folded = [x for x in labels if x.lower() == label.strip().lower()]
    return folded[0] if len(folded) == 1 else None


def _with_provenance(manifest: pd.DataFrame) -> pd.DataFrame:
    """The base manifest with the provenance columns (a plain ingested version: every row ``base``)."""
    m = manifest.copy()
    if "provenance" not in m:
        m["provenance"] = BASE
    for col in ("label_source", "feedback_batch"):
        if col not in m:
            m[col] = ""
    for col in PROVENANCE_COLUMNS:
        m[col] = m[col].fillna("").astype(str)
    return m


def _batch_id(rows: list[dict[str, Any]]) -> str:
    """A name for this batch from its content: the same labels grown twice give the same version."""
    h = hashlib.sha256()
    for r in sorted(rows, key=lambda r: r["sha256"]):
        h.update(f"{r['sha256']}\t{r['label']}\t{r['label_source']}\n".encode())
    return "fb-" + h.hexdigest()[:12]


def _plan(
    base: versions.DatasetVersion,
    manifest: pd.DataFrame,
    labels: dict[str, LabelRecord],
    store: str,
    cfg: GrowConfig,
    report: GrowReport,
) -> list[tuple[dict[str, Any], bytes]]:
    """New rows (with bytes) to add; conflicts and relabels with the base applied to ``manifest``."""
    in_base = dict(zip(manifest["sha256"], manifest.index, strict=True))
    max_pixels = load_data_config().max_pixels
    fractions = base.meta.get("split_fractions") or load_data_config().split_fractions
    new: list[tuple[dict[str, Any], bytes]] = []
    for sha, rec in sorted(labels.items()):
        label = _class_of(rec.label, base.labels)
        if label is None:
            report.skipped.append({"sha256": sha, "reason": f"unknown class {rec.label!r}"})
            continue
        if sha in in_base:
            pos = in_base[sha]
            if manifest.at[pos, "label"] == label:
                report.already_in_base += 1
                continue
            report.conflicts.append(
                {
                    "sha256": sha,
                    "kind": "base",
                    "base_label": str(manifest.at[pos, "label"]),
                    "feedback_label": label,
                    "source": rec.source,
                    "kept": label if cfg.on_conflict == FEEDBACK else str(manifest.at[pos, "label"]),
                }
            )
            if cfg.on_conflict == FEEDBACK:
                manifest.loc[manifest["sha256"] == sha, ["label", "label_source"]] = [label, rec.source]
                report.relabelled += 1
            continue
        data = _read_image(store, sha)
        if data is None:
            report.skipped.append({"sha256": sha, "reason": f"image not in the capture store {store}"})
            continue
        got, info, error = examine(data, max_pixels, True)
        if got != sha or info is None:
            reason = error or f"stored bytes hash to {got[:12]}..., not the name"
            report.skipped.append({"sha256": sha, "reason": f"unusable image: {reason}"})
            continue
        row = {
            "sha256": sha,
            "label": label,
            "split": splits.pick(sha, fractions, SPLITS),
            "source": f"feedback/{sha}",
            "content_class": None,
            "width": info["width"],
            "height": info["height"],
            "format": info["format"],
            "mode": info["mode"],
            "nbytes": len(data),
            "provenance": FEEDBACK,
            "label_source": rec.source,
        }
        new.append((row, data))
    return new


def _stage_base_shards(base: versions.DatasetVersion, folder: Path) -> list[str]:
    """The base's shard files, unchanged (hard links when local: versions are immutable)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = list(base.meta.get("shards") or sorted(base.manifest["shard"].unique()))
    for name in names:
        src = storage.join(base.uri, "shards", name)
        if storage.is_s3(src):
            (folder / name).write_bytes(storage.read_bytes(src))
            continue
        try:
            os.link(src, folder / name)
        except OSError:
            shutil.copy2(src, folder / name)
    return names


def grow_version(
    base: versions.DatasetVersion,
    labels: dict[str, LabelRecord],
    store: str,
    *,
    cfg: GrowConfig,
    root: str | None = None,
    reviewer_conflicts: list[dict[str, Any]] | None = None,
    skipped: list[dict[str, str]] | None = None,
) -> GrowReport:
    """Publish ``base`` ∪ the labelled images of ``store`` as a new version under ``root`` (default: the
    base's root). Fewer usable new images than ``cfg.min_feedback_rows``: :class:`DataError`, nothing
    written. Returns the report (``created`` False when that content already existed)."""
    root = root or base.uri.rstrip("/").rsplit("/", 1)[0]
    report = GrowReport(
        base=base.version_id,
        conflicts=[{**c, "kind": "reviewers"} for c in reviewer_conflicts or []],
        skipped=list(skipped or []),
    )
    manifest = _with_provenance(base.manifest)
    new = _plan(base, manifest, labels, store, cfg, report)
    if len(new) < cfg.min_feedback_rows:
        why = "; ".join(f"{s['sha256'][:12]}: {s['reason']}" for s in report.skipped[:3])
        raise DataError(
            f"only {len(new)} new labelled images to add to {base.version_id} "
            f"(grow.min_feedback_rows = {cfg.min_feedback_rows}; {len(labels)} labels, "
            f"{report.already_in_base} already in the base, {len(report.skipped)} skipped"
            + (f", e.g. {why}" if why else "")
            + "): nothing written"
        )
    batch = _batch_id([r for r, _ in new])
    report.feedback_batch = batch
    tmp = Path(tempfile.mkdtemp(prefix="aidetect-grow-"))
    try:
        shards = _stage_base_shards(base, tmp / "shards")
        writer = versions._ShardWriter(
            tmp / "new-shards", int(base.meta.get("shard_max_bytes", 64 * 1024**2))
        )
        try:
            placed = [writer.add(row["sha256"], data) for row, data in new]
        finally:
            writer.close()
        renamed = {n: f"part-{len(shards) + i:05d}.parquet" for i, n in enumerate(writer.names)}
        for old, name in renamed.items():
            os.replace(tmp / "new-shards" / old, tmp / "shards" / name)
        rows = pd.DataFrame([r for r, _ in new])
        rows["origin"] = batch
        rows["feedback_batch"] = batch
        rows["shard"] = [renamed[s] for s, _ in placed]
        rows["row"] = np.array([r for _, r in placed], dtype="int32")
        grown = pd.concat([manifest, rows[manifest.columns]], ignore_index=True)
        grown = grown.astype({"width": "int32", "height": "int32", "nbytes": "int64", "row": "int32"})
        version_id = versions._content_id(base.labels, grown, base.real_label)
        uri = storage.join(root, version_id)
        report.version_id, report.uri = version_id, uri
        for row, _ in new:
            report.added.setdefault(row["split"], {}).setdefault(row["label"], 0)
            report.added[row["split"]][row["label"]] += 1
        report.feedback_rows = int((grown["provenance"] == FEEDBACK).sum())
        report.feedback_share = report.feedback_rows / len(grown)
        if versions._version_exists(uri):
            log.info("grown version %s already exists at %s; nothing written", version_id, uri)
            return report
        extra = {
            "source": base.uri,
            "source_kind": "grow",
            "parent": base.version_id,
            "real_label": base.real_label,
            "split_fractions": base.meta.get("split_fractions") or load_data_config().split_fractions,
            "verify_decode": bool(base.meta.get("verify_decode")),
            "feedback_batch": batch,
            "feedback": {
                "added": report.added,
                "feedback_rows": report.feedback_rows,
                "already_in_base": report.already_in_base,
                "relabelled": report.relabelled,
                "num_skipped": len(report.skipped),
                "skipped": report.skipped[:MAX_LISTED],
                "conflicts": report.conflicts[:MAX_LISTED],
                "store": store,
            },
        }
        shard_names = [*shards, *renamed.values()]
        report.created = versions._publish(tmp, grown, base.labels, version_id, shard_names, extra, uri)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return report
