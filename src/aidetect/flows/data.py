"""Data flows: a source becomes a content-addressed dataset version, then passes (or fails) validation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aidetect.errors import AidetectError
from aidetect.flows.refs import DatasetRef
from aidetect.flows.stores import Stores


@dataclass(frozen=True)
class Ingested:
    """The version and what the ingest did (``result``: created, counts, skipped, duplicates, timing)."""

    dataset: DatasetRef
    result: Any  # aidetect.data.versions.IngestResult

    def summary(self) -> dict[str, Any]:
        r = self.result
        return {**self.dataset.to_dict(), "created": r.created, "counts": r.counts, "skipped": len(r.skipped)}


def ingest(source: str, stores: Stores, cfg: Any = None) -> Ingested:
    """Ingest ``source`` (folder, zip, parquet, ``s3://``); the same content gives the same version id."""
    from aidetect.data.versions import ingest as ingest_source

    if not source:
        raise AidetectError("the data source is empty: name a folder, zip, parquet file or s3:// prefix")
    published = _published_version(source)
    if published is not None:  # a dataset version (say a grown one) is used as it is
        return published
    from aidetect.data.text.sources import is_text_data

    if is_text_data(source):  # CSV / JSONL / parquet with a text column: the text modality
        from aidetect.flows import text

        res = text.ingest(source, stores, cfg)
        return Ingested(DatasetRef(res.version_id, res.uri, stores.datasets_root), res)
    res = ingest_source(source, root=stores.datasets, config=cfg)
    return Ingested(DatasetRef(res.version_id, res.uri, stores.datasets_root), res)


def _published_version(uri: str) -> Ingested | None:
    """``uri`` is a published dataset version (``<root>/<id>`` with ``version.json``): that version."""
    from aidetect import storage
    from aidetect.data.versions import MARKER, IngestResult, open_version

    if not storage.exists(storage.join(uri, MARKER)):
        return None
    root, _, version_id = uri.rstrip("/").rpartition("/")
    found = open_version(version_id, root)
    ref = DatasetRef(found.version_id, found.uri, root)
    return Ingested(ref, IngestResult(found.version_id, found.uri, False, found.counts()))


@dataclass(frozen=True)
class Validated:
    """The suite's result and the version later steps use (duplicate-free under the ``drop`` policy)."""

    result: Any  # aidetect.data.validation.ValidationResult
    dataset: DatasetRef
    reports: dict[str, str]


def validate(
    dataset: DatasetRef,
    stores: Stores,
    *,
    cfg: Any = None,
    out: str | None = None,
    raise_on_critical: bool = True,
) -> Validated:
    """Run the Great Expectations suite, write the JSON/Markdown reports (under ``out``, default the
    home's reports folder), and stop on critical failures unless told not to."""
    from aidetect.data.validation import validate_version
    from aidetect.data.validation_report import write_reports
    from aidetect.flows import text

    if text.is_text_dataset(dataset):
        result = text.validate(dataset, stores, cfg)
    else:
        result = validate_version(dataset.version_id, stores.datasets, cfg)
    reports = {k: str(v) for k, v in write_reports(result, out).items()}
    if raise_on_critical:
        result.raise_for_critical()
    ref = dataset
    if result.derived_version:
        from aidetect.data.versions import open_version

        derived = open_version(result.derived_version, root=stores.datasets)
        ref = DatasetRef(derived.version_id, derived.uri, dataset.root, parent=dataset.version_id)
    return Validated(result, ref, reports)


@dataclass(frozen=True)
class Grown:
    """The grown version and what joined it (``report``: added, skipped, conflicts, feedback share)."""

    dataset: DatasetRef
    report: Any  # aidetect.feedback.grow.GrowReport

    def summary(self) -> dict[str, Any]:
        return {**self.dataset.to_dict(), **self.report.to_dict()}


def grow(
    base: DatasetRef, stores: Stores, *, cfg: Any = None, labels_root: str = "", store: str = ""
) -> Grown:
    """``base`` ∪ the labelled kept images (labels by the conflict policy from the label log at
    ``labels_root``, bytes from the capture store ``store``; defaults from ``configs/feedback.yaml``).

    Too few new labelled images: ``DataError``, nothing written."""
    from aidetect.feedback import grow as growing

    cfg = cfg or growing.load_feedback_config()
    version = base.open()
    labels, disputes, unknown = growing.resolved_labels(
        labels_root or cfg.labels.root, cfg.labels, version.labels
    )
    report = growing.grow_version(
        version,
        labels,
        store or growing.store_uri(cfg),
        cfg=cfg.grow,
        root=stores.datasets,
        reviewer_conflicts=disputes,
        skipped=unknown,
    )
    return Grown(
        DatasetRef(report.version_id, report.uri, stores.datasets_root, parent=base.version_id), report
    )
