"""Text dataset versions: the image store layout (``shards/``, ``manifest.parquet``, ``version.json``)
with a ``text`` column in the shards and ``"modality": "text"`` in ``version.json``.

Identity, publishing and reading come from :mod:`aidetect.data.versions` (``open_version`` and
``list_versions`` work for both modalities); only reading the source and placing rows differ.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from aidetect import paths, storage
from aidetect.data import splits
from aidetect.data import versions as store
from aidetect.data.config import SPLITS
from aidetect.data.labels import LabelMatcher
from aidetect.data.text.normalize import TextError, clean_text, text_sha256
from aidetect.data.text.settings import TextDataConfig, load_text_data_config
from aidetect.data.text.sources import TextRow, read_rows, source_kind
from aidetect.errors import DataError

log = logging.getLogger(__name__)

MODALITY = "text"
MANIFEST_COLUMNS = [
    "sha256",
    "label",
    "split",
    "source",
    "origin",
    "group",
    "domain",
    "generator",
    "where",
    "nchars",
    "nbytes",
    "shard",
    "row",
]
_SHARD_SCHEMA = pa.schema([("sha256", pa.string()), ("text", pa.string())])


def is_text_version(version: store.DatasetVersion) -> bool:
    return version.meta.get("modality") == MODALITY


def open_text_version(ref: str, root: str | None = None) -> store.DatasetVersion:
    """Open a version that must be a text version (a clear error for an image one)."""
    version = store.open_version(ref, root)
    if not is_text_version(version):
        raise DataError(f"dataset version {version.version_id} holds images, not texts")
    return version


def read_texts(version: store.DatasetVersion, split: str | None = None) -> list[str]:
    """The normalised texts of ``split`` (every row when None), aligned with ``version.rows(split)``."""
    rows = version.rows(split)
    out: list[str] = [""] * len(rows)
    for shard, group in rows.groupby("shard", sort=True):
        texts = version._read_shard(str(shard)).column("text")
        for pos, r in zip(group.index, group["row"], strict=True):
            out[pos] = texts[int(r)].as_py()
    return out


def _split_key(sha: str, group: str | None) -> str:
    """What decides the split: the group (rewrites of one original stay together), else the text."""
    return hashlib.sha256(f"group:{group}".encode()).hexdigest() if group else sha


def _write_shards(
    folder: Path, shas: list[str], texts: list[str], max_bytes: int
) -> tuple[list[str], list[str], list[int]]:
    """Write ``part-NNNNN.parquet`` files of about ``max_bytes``: (names, shard per row, row in shard)."""
    folder.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    shard_of: list[str] = []
    row_of: list[int] = []
    start = 0
    while start < len(texts):
        end, size = start, 0
        while end < len(texts) and (end == start or size < max_bytes):
            size += len(texts[end]) + 64
            end += 1
        name = f"part-{len(names):05d}.parquet"
        table = pa.table(
            [pa.array(shas[start:end], pa.string()), pa.array(texts[start:end], pa.string())],
            schema=_SHARD_SCHEMA,
        )
        pq.write_table(table, folder / name)
        names.append(name)
        shard_of += [name] * (end - start)
        row_of += list(range(end - start))
        start = end
    return names, shard_of, row_of


def _label(matcher: LabelMatcher, row: TextRow, uri: str) -> str:
    value = row.label
    if value is None or (isinstance(value, float) and value != value) or str(value).strip() == "":
        raise DataError(f"{uri}: {row.where} has no label")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return matcher.match(str(value), f"{uri} ({row.where})")


def _check_skips(uri: str, total: int, skipped: list[dict[str, str]], max_fraction: float) -> None:
    if total == 0:
        raise DataError(f"no texts found in {uri}")
    if len(skipped) == total or len(skipped) / total > max_fraction:
        examples = "; ".join(f"{s['source']}: {s['reason']}" for s in skipped[:3])
        raise DataError(
            f"{len(skipped)} of {total} texts in {uri} are unusable "
            f"({len(skipped) / total:.1%} > max_skip_fraction {max_fraction:.1%}): {examples}",
            hint="fix those rows or raise text_data.max_skip_fraction; nothing was written",
        )


def ingest_text(
    source: str, *, root: str | None = None, config: TextDataConfig | None = None
) -> store.IngestResult:
    """Read a CSV, JSONL or parquet file of labelled texts into a new dataset version under ``root``.

    Unusable texts (empty, too long, not UTF-8, control characters) are skipped and listed while they stay
    within ``max_skip_fraction``; a structural problem or an unknown label fails the ingest. Nothing is
    published unless everything succeeded; the same content gives the same id and writes nothing.
    """
    cfg = config or load_text_data_config()
    root = root or paths.datasets_root()
    started = time.perf_counter()
    kind = source_kind(source)
    matcher = LabelMatcher(cfg.labels, cfg.synonyms)
    cols: dict[str, list[Any]] = {c: [] for c in MANIFEST_COLUMNS if c not in {"split", "shard", "row"}}
    texts: list[str] = []
    skipped: list[dict[str, str]] = []
    total = 0
    for row in read_rows(source, cfg):
        total += 1
        label = _label(matcher, row, source)
        try:
            if row.error:
                raise TextError("encoding", row.error)
            text = clean_text(row.text or "", cfg.max_bytes)
        except TextError as exc:
            skipped.append({"source": row.where, "reason": f"{exc.reason}: {exc}"})
            continue
        sha = text_sha256(text)
        texts.append(text)
        for key, value in (
            ("sha256", sha),
            ("label", label),
            ("source", row.group or ""),
            ("origin", row.generator or ""),
            ("group", row.group),
            ("domain", row.domain),
            ("generator", row.generator),
            ("where", row.where),
            ("nchars", len(text)),
            ("nbytes", len(text.encode("utf-8"))),
        ):
            cols[key].append(value)
    _check_skips(source, total, skipped, cfg.max_skip_fraction)

    manifest = pd.DataFrame(cols)
    has_groups = manifest["group"].notna().any()
    manifest["split"] = [
        splits.pick(_split_key(sha, g), cfg.split_fractions, SPLITS)
        for sha, g in zip(manifest["sha256"], manifest["group"], strict=True)
    ]
    labels = list(cfg.labels)
    identity = manifest.assign(origin=manifest["domain"].fillna("") + "|" + manifest["generator"].fillna(""))
    version_id = store._content_id(labels, identity, cfg.real_label)
    uri = storage.join(root, version_id)
    result = store.IngestResult(version_id, uri, False, store._counts(manifest, labels), skipped)
    if store._version_exists(uri):
        log.info("dataset version %s already exists at %s; nothing written", version_id, uri)
        result.seconds = time.perf_counter() - started
        return result
    tmp = Path(tempfile.mkdtemp(prefix="aidetect-ingest-text-"))
    try:
        names, shard_of, row_of = _write_shards(
            tmp / "shards", manifest["sha256"].tolist(), texts, cfg.shard_max_bytes
        )
        manifest["shard"], manifest["row"] = shard_of, row_of
        manifest = manifest[MANIFEST_COLUMNS].astype({"nchars": "int64", "nbytes": "int64", "row": "int32"})
        meta = {
            "modality": MODALITY,
            "real_label": cfg.real_label,
            "source": source,
            "source_kind": kind,
            "num_texts": len(manifest),
            "num_skipped": len(skipped),
            "skipped": skipped[: store.MAX_LISTED_SKIPS],
            "split_by": "group" if has_groups else "hash",
            "split_fractions": cfg.split_fractions,
            "max_bytes": cfg.max_bytes,
        }
        result.created = store._publish(tmp, manifest, labels, version_id, names, meta, uri)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result.seconds = time.perf_counter() - started
    return result
