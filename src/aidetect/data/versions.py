"""Immutable, content-addressed dataset versions: image bytes in parquet shards plus a manifest.

Layout of one version under the datasets root (a folder or an ``s3://`` prefix)::

    <root>/<version_id>/shards/part-00000.parquet   sha256, image (bytes)
    <root>/<version_id>/manifest.parquet            one row per image (see MANIFEST_COLUMNS)
    <root>/<version_id>/version.json                metadata; written last, readers require it

The id is a digest of the labels and every row's (sha256, label, split, source, origin), so the same
content always gets the same id, and re-ingesting it writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from aidetect import paths, storage
from aidetect.data import content, splits
from aidetect.data.config import SPLITS, DataConfig, load_data_config
from aidetect.data.examine import examine_stream
from aidetect.data.labels import LabelMatcher
from aidetect.data.sources import Source, open_source
from aidetect.decision import real_label_for
from aidetect.errors import DataError, StorageError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MARKER = "version.json"
MANIFEST = "manifest.parquet"
ID_LENGTH = 16
MAX_LISTED_SKIPS = 200
_VERSION_REF = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}")  # one plain name, never a path
MANIFEST_COLUMNS = [
    "sha256",
    "label",
    "split",
    "source",
    "content_class",
    "origin",
    "width",
    "height",
    "format",
    "mode",
    "nbytes",
    "shard",
    "row",
]
_SHARD_SCHEMA = pa.schema([("sha256", pa.string()), ("image", pa.binary())])


@dataclass
class IngestResult:
    """What :func:`ingest` did: ``created`` is False when the same content already existed."""

    version_id: str
    uri: str
    created: bool
    counts: dict[str, dict[str, int]]
    skipped: list[dict[str, str]] = field(default_factory=list)
    duplicates_dropped: int = 0
    ignored: list[str] = field(default_factory=list)
    seconds: float = 0.0


class _ShardWriter:
    """Append images to ``part-NNNNN.parquet`` files, starting a new one after ``max_bytes``."""

    def __init__(self, folder: Path, max_bytes: int, batch_rows: int = 1024) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.batch_rows = batch_rows
        self.names: list[str] = []
        self._writer: pq.ParquetWriter | None = None
        self._rows_in_shard = 0
        self._bytes_in_shard = 0
        self._buf_sha: list[str] = []
        self._buf_img: list[bytes] = []
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, sha256: str, data: bytes) -> tuple[str, int]:
        if self._writer is None or self._bytes_in_shard >= self.max_bytes:
            self._roll()
        self._buf_sha.append(sha256)
        self._buf_img.append(data)
        row = self._rows_in_shard
        self._rows_in_shard += 1
        self._bytes_in_shard += len(data)
        if len(self._buf_sha) >= self.batch_rows:
            self._flush()
        return self.names[-1], row

    def _flush(self) -> None:
        if self._buf_sha and self._writer is not None:
            table = pa.table(
                [pa.array(self._buf_sha, pa.string()), pa.array(self._buf_img, pa.binary())],
                schema=_SHARD_SCHEMA,
            )
            self._writer.write_table(table)
            self._buf_sha, self._buf_img = [], []

    def _roll(self) -> None:
        self.close()
        name = f"part-{len(self.names):05d}.parquet"
        self.names.append(name)
        self._writer = pq.ParquetWriter(self.folder / name, _SHARD_SCHEMA, compression="none")
        self._rows_in_shard = 0
        self._bytes_in_shard = 0

    def close(self) -> None:
        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _content_id(labels: list[str], manifest: pd.DataFrame, real_label: str = "") -> str:
    """Digest of the label set and every row's identity; independent of source order and shard layout.

    A real label other than the first is part of the identity (it changes what every row means)."""
    lines = sorted(
        "\t".join(str(v) if v is not None else "" for v in t)
        for t in zip(
            manifest["sha256"],
            manifest["label"],
            manifest["split"],
            manifest["source"],
            manifest["origin"],
            strict=True,
        )
    )
    h = hashlib.sha256()
    header: dict[str, Any] = {"format": FORMAT_VERSION, "labels": labels}
    if real_label and real_label != labels[0]:
        header["real_label"] = real_label
    h.update(json.dumps(header).encode())
    for line in lines:
        h.update(line.encode())
        h.update(b"\n")
    return h.hexdigest()[:ID_LENGTH]


def _counts(manifest: pd.DataFrame, labels: list[str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    grouped = manifest.groupby(["split", "label"]).size()
    for split in SPLITS:
        row = {label: int(grouped.get((split, label), 0)) for label in labels}
        if sum(row.values()):
            out[split] = row
    return out


def _version_exists(uri: str) -> bool:
    return storage.exists(storage.join(uri, MARKER))


def ingest(source: str, *, root: str | None = None, config: DataConfig | None = None) -> IngestResult:
    """Read ``source`` into a new dataset version under ``root`` (default: :func:`paths.datasets_root`).

    Streams the source once into temporary shards, then publishes atomically; if a version with the
    same content id exists, nothing is written and ``created`` is False.
    """
    cfg = config or load_data_config()
    root = root or paths.datasets_root()
    started = time.perf_counter()
    src = open_source(source, cfg)
    tmp = Path(tempfile.mkdtemp(prefix="aidetect-ingest-"))
    try:
        result = _ingest_into(src, cfg, root, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result.seconds = time.perf_counter() - started
    return result


def _ingest_into(src: Source, cfg: DataConfig, root: str, tmp: Path) -> IngestResult:
    matcher = LabelMatcher(cfg.labels, cfg.synonyms)
    writer = _ShardWriter(tmp / "shards", cfg.shard_max_bytes)
    cols: dict[str, list[Any]] = {c: [] for c in MANIFEST_COLUMNS if c not in {"split", "content_class"}}
    source_split: list[str | None] = []
    skipped: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    dropped = 0
    total = 0
    try:
        stream = examine_stream(iter(src), cfg.max_pixels, cfg.verify_decode, cfg.workers)
        for item, examined in stream:
            total += 1
            label = matcher.match(item.label, f"{src.uri} ({item.source})")
            if examined is None or examined[1] is None:
                reason = item.error or (examined[2] if examined else "unreadable")
                skipped.append({"source": item.source, "reason": str(reason)})
                continue
            sha, info = examined[0], examined[1]
            if cfg.duplicates == "drop":
                if (sha, label) in seen:
                    dropped += 1
                    continue
                seen.add((sha, label))
            shard, row = writer.add(sha, item.data)
            for key, value in (
                ("sha256", sha),
                ("label", label),
                ("source", item.source),
                ("origin", item.origin),
                ("width", info["width"]),
                ("height", info["height"]),
                ("format", info["format"]),
                ("mode", info["mode"]),
                ("nbytes", len(item.data)),
                ("shard", shard),
                ("row", row),
            ):
                cols[key].append(value)
            source_split.append(item.split)
    finally:
        writer.close()
    _check_counts(src.uri, total, skipped, cfg.max_corrupt_fraction)

    manifest = pd.DataFrame(cols)
    manifest["split"] = _assign_splits(manifest["sha256"].tolist(), source_split, cfg)
    manifest["content_class"] = content.content_classes(manifest["source"].tolist(), cfg.content_class)
    manifest = manifest[MANIFEST_COLUMNS]
    manifest = manifest.astype({"width": "int32", "height": "int32", "nbytes": "int64", "row": "int32"})
    labels = list(cfg.labels)
    real_label = real_label_for(labels, cfg.real_label)
    version_id = _content_id(labels, manifest, real_label)
    uri = storage.join(root, version_id)
    counts = _counts(manifest, labels)
    result = IngestResult(version_id, uri, False, counts, skipped, dropped, list(src.ignored))
    if _version_exists(uri):
        log.info("dataset version %s already exists at %s; nothing written", version_id, uri)
        return result

    meta = {
        "real_label": real_label,
        "source": src.uri,
        "source_kind": src.kind,
        "num_skipped": len(skipped),
        "skipped": skipped[:MAX_LISTED_SKIPS],
        "duplicates_policy": cfg.duplicates,
        "duplicates_dropped": dropped,
        "num_ignored": len(src.ignored),
        "split_fractions": cfg.split_fractions,
        "verify_decode": cfg.verify_decode,
    }
    result.created = _publish(tmp, manifest, labels, version_id, writer.names, meta, uri)
    return result


def _publish(
    tmp: Path,
    manifest: pd.DataFrame,
    labels: list[str],
    version_id: str,
    shards: list[str],
    extra: dict[str, Any],
    uri: str,
) -> bool:
    """Write manifest and ``version.json`` into ``tmp`` and publish it to ``uri``; False if it existed."""
    manifest.to_parquet(tmp / MANIFEST, index=False)
    meta = {
        "format": FORMAT_VERSION,
        "version_id": version_id,
        "labels": labels,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "num_images": len(manifest),
        "counts": _counts(manifest, labels),
        "shards": shards,
        **extra,
    }
    (tmp / MARKER).write_text(json.dumps(meta, indent=2) + "\n")
    try:
        storage.publish_dir(tmp, uri, marker=MARKER)
    except StorageError:
        if _version_exists(uri):  # a concurrent ingest of the same content won the race
            return False
        raise
    return True


def derive_version(
    parent: DatasetVersion, keep: pd.Series, *, root: str | None = None, note: str = ""
) -> DatasetVersion:
    """A new version holding the ``keep`` rows of ``parent`` (same labels and splits); immutable parent."""
    root = root or parent.uri.rstrip("/").rsplit("/", 1)[0]
    kept = parent.manifest[keep.values].reset_index(drop=True)
    if kept.empty:
        raise DataError(f"deriving from {parent.version_id} would leave no images")
    version_id = _content_id(parent.labels, kept, parent.real_label)
    uri = storage.join(root, version_id)
    if not _version_exists(uri):
        tmp = Path(tempfile.mkdtemp(prefix="aidetect-derive-"))
        try:
            writer = _ShardWriter(tmp / "shards", int(parent.meta.get("shard_max_bytes", 64 * 1024 * 1024)))
            keys = list(zip(kept["sha256"], kept["source"], strict=True))
            wanted = set(keys)
            placed: dict[tuple[str, str], tuple[str, int]] = {}
            try:
                for row, data in parent.iter_images():
                    key = (row["sha256"], row["source"])
                    if key in wanted:
                        placed[key] = writer.add(row["sha256"], data)
            finally:
                writer.close()
            kept["shard"] = [placed[k][0] for k in keys]
            kept["row"] = np.array([placed[k][1] for k in keys], dtype="int32")
            extra = {
                "source": parent.uri,
                "source_kind": "version",
                "parent": parent.version_id,
                "note": note,
                "real_label": parent.real_label,
            }
            _publish(tmp, kept, parent.labels, version_id, writer.names, extra, uri)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return open_version(version_id, root)


def _check_counts(uri: str, total: int, skipped: list[dict[str, str]], max_fraction: float) -> None:
    if total == 0:
        raise DataError(f"no images found in {uri}")
    if skipped and len(skipped) / total > max_fraction:
        examples = "; ".join(f"{s['source']}: {s['reason']}" for s in skipped[:3])
        raise DataError(
            f"{len(skipped)} of {total} images in {uri} are unreadable "
            f"({len(skipped) / total:.1%} > max_corrupt_fraction {max_fraction:.1%}), e.g. {examples}"
        )
    if len(skipped) == total:
        raise DataError(f"no readable images in {uri}")


def _assign_splits(shas: list[str], source_split: list[str | None], cfg: DataConfig) -> list[str]:
    present = {s for s in source_split if s}
    out = [
        splits.assign(sha, s, present, cfg.split_fractions) for sha, s in zip(shas, source_split, strict=True)
    ]
    found: dict[str, set[str]] = defaultdict(set)
    for sha, s in zip(shas, out, strict=True):
        found[sha].add(s)
    moved = splits.resolve_conflicts(found)
    if moved:
        log.warning("%d images appear in several source splits; each kept in one split", len(moved))
        out = [moved.get(sha, s) for sha, s in zip(shas, out, strict=True)]
    return out


# -- reading --------------------------------------------------------------------------------------


class DatasetVersion:
    """A published dataset version: metadata, manifest, and streamed access to image bytes."""

    def __init__(self, uri: str, meta: dict[str, Any], manifest: pd.DataFrame) -> None:
        self.uri = uri
        self.meta = meta
        self.version_id: str = meta["version_id"]
        self.labels: list[str] = list(meta["labels"])
        self.manifest = manifest

    @property
    def real_label(self) -> str:
        """The authentic class, decided at ingest (versions from before that: the first label)."""
        return str(self.meta.get("real_label") or self.labels[0])

    def __repr__(self) -> str:
        return f"DatasetVersion({self.version_id!r}, images={len(self.manifest)}, uri={self.uri!r})"

    def rows(self, split: str | None = None) -> pd.DataFrame:
        """Manifest rows of ``split`` (all when None), in manifest order, with a fresh 0..n-1 index."""
        if split is not None and split not in SPLITS:
            raise DataError(f"unknown split {split!r} (known: {', '.join(SPLITS)})")
        df = self.manifest if split is None else self.manifest[self.manifest["split"] == split]
        return df.reset_index(drop=True)

    def _read_shard(self, name: str) -> pa.Table:
        return storage.read_parquet(storage.join(self.uri, "shards", name), "shard")

    def iter_images(self, split: str | None = None) -> Iterator[tuple[dict[str, Any], bytes]]:
        """Yield ``(row, image_bytes)`` shard by shard (one shard in memory at a time)."""
        rows = self.rows(split)
        for shard, group in rows.groupby("shard", sort=True):
            images = self._read_shard(str(shard)).column("image")
            for row in group.to_dict("records"):
                yield row, images[int(row["row"])].as_py()

    def read_images(self, split: str | None = None) -> list[bytes]:
        """All image bytes of ``split``, aligned with :meth:`rows` (``split`` None = every row)."""
        rows = self.rows(split)
        out: list[bytes | None] = [None] * len(rows)
        for shard, group in rows.groupby("shard", sort=True):
            images = self._read_shard(str(shard)).column("image")
            for pos, r in zip(group.index, group["row"], strict=True):
                out[pos] = images[int(r)].as_py()
        return out  # type: ignore[return-value]

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per split and label."""
        return _counts(self.manifest, self.labels)


def _read_meta(uri: str) -> dict[str, Any]:
    try:
        return json.loads(storage.read_bytes(storage.join(uri, MARKER)))
    except ValueError:
        raise DataError(f"{uri}/{MARKER} is not valid JSON") from None


def list_versions(root: str | None = None) -> list[dict[str, Any]]:
    """Metadata (``version.json``) of every published version under ``root``, oldest first."""
    root = root or paths.datasets_root()
    if storage.is_s3(root):
        markers = [u for u in storage.list_uris(root.rstrip("/") + "/", suffix="/" + MARKER)]
        uris = [
            u[: -len(MARKER) - 1]
            for u in markers
            if u[: -len(MARKER) - 1].rsplit("/", 1)[0] == root.rstrip("/")
        ]
    else:
        base = Path(root)
        uris = [str(p.parent) for p in sorted(base.glob(f"*/{MARKER}"))] if base.is_dir() else []
    uris = [u for u in uris if _is_published_name(u.rstrip("/").rsplit("/", 1)[-1])]
    metas = []
    for uri in uris:
        meta = _read_meta(uri)
        meta["uri"] = uri
        metas.append(meta)
    return sorted(metas, key=lambda m: (m.get("created_at", ""), m["version_id"]))


def _is_published_name(name: str) -> bool:
    """A version folder name: a dot-prefixed one is a staging copy (a SIGKILL can leave it behind)."""
    return bool(name) and not name.startswith(".")


def resolve_version_id(ref: str, root: str | None = None) -> str:
    """The full id for ``ref`` (an id or a unique prefix of one).

    ``ref`` is one plain name (letters, digits, ``_ . -``, not starting with a dot): it is joined to
    the datasets root, so ``../x`` or ``a/b`` must never reach the file system or the bucket.
    """
    root = root or paths.datasets_root()
    ref = ref.strip()
    if not ref:
        raise DataError("no dataset version given")
    if not _VERSION_REF.fullmatch(ref):
        raise DataError(f"dataset version {ref[:80]!r} is not a version id (letters, digits, '_', '.', '-')")
    if _version_exists(storage.join(root, ref)):
        return ref
    ids = [m["version_id"] for m in list_versions(root)]
    matches = [i for i in ids if i.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise DataError(f"dataset version prefix {ref!r} is ambiguous: {', '.join(matches[:5])}")
    known = ", ".join(ids[-5:]) or "none"
    raise DataError(f"no dataset version {ref!r} under {root} (known: {known})")


def open_version(version: str, root: str | None = None) -> DatasetVersion:
    """Open a published version by id or unique id prefix."""
    root = root or paths.datasets_root()
    version_id = resolve_version_id(version, root)
    uri = storage.join(root, version_id)
    meta = _read_meta(uri)
    manifest = storage.read_parquet(storage.join(uri, MANIFEST), "manifest").to_pandas()
    return DatasetVersion(uri, meta, manifest)


def version_counts_table(counts: dict[str, dict[str, int]], labels: list[str]) -> list[list[str]]:
    """Rows (header first) of a split x label table with totals, for printing."""
    header = ["split", *labels, "total"]
    rows = [header]
    totals = Counter[str]()
    for split in SPLITS:
        if split not in counts:
            continue
        values = [counts[split].get(label, 0) for label in labels]
        totals.update(dict(zip(labels, values, strict=True)))
        rows.append([split, *map(str, values), str(sum(values))])
    rows.append(["total", *(str(totals[label]) for label in labels), str(sum(totals.values()))])
    return rows
