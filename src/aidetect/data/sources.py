"""Read labelled images from a source: a class-per-folder tree, a .zip of one, HF-style parquet, or s3://.

Every source yields :class:`SourceItem` records in a deterministic order (sorted paths), streaming:
at most one image (or one parquet record batch) is held at a time.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyarrow.parquet as pq

from aidetect import storage
from aidetect.data.config import DataConfig
from aidetect.data.labels import split_of
from aidetect.errors import DataError, StorageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
PARQUET_BATCH_ROWS = 256
# Zip members: an image file is never this large, and images are compressed already, so a member that
# inflates far beyond its stored size is a zip bomb, not a photo (a flat 40 MP BMP is the worst honest case).
ZIP_MEMBER_MAX_BYTES = 256 * 1024 * 1024
ZIP_MEMBER_MAX_RATIO = 200  # inflated / stored, checked once a member inflates past 1 MiB
_ZIP_RATIO_FLOOR = 1024 * 1024


@dataclass(frozen=True)
class SourceItem:
    """One labelled image as found in the source; ``error`` is set when its bytes could not be read."""

    source: str  # path inside the source (``train/REAL/1.jpg``, ``data.parquet#17``)
    label: str  # the class name as the source spells it (folder name, parquet label)
    split: str | None  # the source's split, when it has one
    data: bytes
    origin: str | None = None
    error: str | None = None


def _is_image_name(rel: str) -> bool:
    """An image by extension, not hidden, not macOS zip metadata (plain string ops: called per file)."""
    parts = rel.split("/")
    if any(part.startswith(".") or part == "__MACOSX" for part in parts):
        return False
    name = parts[-1]
    dot = name.rfind(".")
    return dot > 0 and name[dot:].lower() in IMAGE_EXTENSIONS


def _member_limit(info: zipfile.ZipInfo) -> int:
    """The most bytes ``info`` may inflate to: the size cap, tightened by the ratio cap."""
    by_ratio = max(_ZIP_RATIO_FLOOR, info.compress_size * ZIP_MEMBER_MAX_RATIO)
    return min(ZIP_MEMBER_MAX_BYTES, by_ratio)


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes, refusing (:class:`DataError`) one that declares or inflates past its limit.

    The declared size is checked first, then at most ``limit + 1`` bytes are inflated, so a header
    that lies about the size cannot make the read allocate more than the limit either.
    """
    limit = _member_limit(info)
    if info.file_size > limit:
        raise DataError(_too_big(info, info.file_size, limit))
    with zf.open(info) as member:
        data = member.read(limit + 1)
    if len(data) > limit:
        raise DataError(_too_big(info, len(data), limit))
    return data


def _too_big(info: zipfile.ZipInfo, size: int, limit: int) -> str:
    return (
        f"inflates to {size} bytes from {info.compress_size} stored, above the limit of {limit} "
        f"({ZIP_MEMBER_MAX_BYTES} bytes, or {ZIP_MEMBER_MAX_RATIO}x the stored size past 1 MiB)"
    )


def _label_and_split(rel: str, where: str) -> tuple[str, str | None]:
    """Class = the image's parent folder; split = the folder above it when that is a split name."""
    parents = [p for p in rel.split("/")[:-1] if p]
    if not parents or split_of(parents[-1]) is not None:
        raise DataError(f"{where}: image {rel!r} is not inside a class folder (expected <class>/<image>)")
    split = split_of(parents[-2]) if len(parents) >= 2 else None
    return parents[-1], split


class Source:
    """A labelled image source. Iterate it to stream :class:`SourceItem` records."""

    def __init__(self, uri: str, cfg: DataConfig) -> None:
        self.uri = str(uri) if storage.is_s3(uri) else str(Path(uri).absolute())
        self.cfg = cfg
        self.ignored: list[str] = []  # files that are not images (listed, not fatal)
        self.kind = self._detect_kind()

    def _detect_kind(self) -> str:
        uri = self.uri
        lower = uri.lower().rstrip("/")
        if not storage.is_s3(uri) and not Path(uri).exists():
            raise DataError(f"source not found: {uri}")
        if lower.endswith(".zip"):
            return "zip"
        if lower.endswith(".parquet"):
            return "parquet"
        if storage.is_s3(uri):
            return "s3-prefix"
        path = Path(uri)
        if path.is_file():
            raise DataError(f"unsupported source file {uri}: expected a folder, a .zip or a .parquet file")
        return "folder"

    def __iter__(self) -> Iterator[SourceItem]:
        if self.kind == "zip":
            yield from self._zip(self.uri)
        elif self.kind == "parquet":
            yield from self._parquet([self.uri], base=self.uri)
        elif self.kind == "folder":
            yield from self._folder(Path(self.uri))
        else:
            yield from self._s3_prefix(self.uri)

    # -- kinds ---------------------------------------------------------------------------------
    def _folder(self, root: Path) -> Iterator[SourceItem]:
        rels: list[str] = []
        parquets: list[str] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__MACOSX")
            for name in filenames:
                rel = Path(dirpath, name).relative_to(root).as_posix()
                if _is_image_name(rel):
                    rels.append(rel)
                elif name.lower().endswith(".parquet"):
                    parquets.append(str(Path(dirpath, name)))
                elif not name.startswith("."):
                    self.ignored.append(rel)
        if parquets and not rels:
            yield from self._parquet(sorted(parquets), base=str(root))
            return
        self.ignored.extend(sorted(Path(q).relative_to(root).as_posix() for q in parquets))
        for rel in sorted(rels):
            label, split = _label_and_split(rel, self.uri)
            try:
                data = (root / rel).read_bytes()
            except OSError as exc:
                yield SourceItem(rel, label, split, b"", error=f"unreadable: {exc.strerror}")
                continue
            yield SourceItem(rel, label, split, data)

    def _zip(self, uri: str) -> Iterator[SourceItem]:
        with storage.local_copy(uri) as path:
            try:
                zf = zipfile.ZipFile(path)
            except zipfile.BadZipFile:
                raise DataError(f"{uri}: not a valid zip archive") from None
            with zf:
                infos = sorted((i for i in zf.infolist() if not i.is_dir()), key=lambda i: i.filename)
                for info in infos:
                    rel = info.filename
                    if not _is_image_name(rel):
                        if not PurePosixPath(rel).name.startswith("."):
                            self.ignored.append(rel)
                        continue
                    label, split = _label_and_split(rel, uri)
                    try:
                        data = _read_member(zf, info)
                    except (zipfile.BadZipFile, OSError, EOFError, DataError) as exc:
                        yield SourceItem(rel, label, split, b"", error=f"unreadable zip member: {exc}")
                        continue
                    yield SourceItem(rel, label, split, data)

    def _s3_prefix(self, prefix: str) -> Iterator[SourceItem]:
        uris = storage.list_uris(prefix.rstrip("/") + "/")
        if not uris:
            raise DataError(f"source not found or empty: {prefix}")
        parquets = [u for u in uris if u.lower().endswith(".parquet")]
        zips = [u for u in uris if u.lower().endswith(".zip")]
        images = [u for u in uris if _is_image_name(u)]
        base = prefix.rstrip("/") + "/"
        if parquets and not images:
            yield from self._parquet(parquets, base=prefix)
            return
        if zips and not images:
            for z in zips:
                yield from self._zip(z)
            return
        self.ignored.extend(u[len(base) :] for u in uris if not _is_image_name(u))
        for uri in images:
            rel = uri[len(base) :]
            label, split = _label_and_split(rel, prefix)
            yield SourceItem(rel, label, split, storage.read_bytes(uri))

    def _parquet(self, uris: list[str], base: str) -> Iterator[SourceItem]:
        for uri in uris:
            rel = _relative(uri, base)
            with storage.local_copy(uri) as path:
                yield from self._parquet_file(path, rel, uri)

    def _parquet_file(self, path: Path, rel: str, uri: str) -> Iterator[SourceItem]:
        try:
            pf = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"{uri}: not a readable parquet file ({exc})") from None
        schema = pf.schema_arrow
        image_col, image_field = _image_column(schema, self.cfg.image_column, uri)
        label_col = self.cfg.label_column
        if label_col not in schema.names:
            raise DataError(
                f"{uri}: malformed parquet schema: no label column {label_col!r} "
                f"(columns: {', '.join(schema.names)}; set label_column in configs/data.yaml)"
            )
        names = _int_label_names(schema, label_col, self.cfg.label_names, uri)
        origin_col = self.cfg.origin_column if self.cfg.origin_column in schema.names else None
        split_col = "split" if "split" in schema.names else None
        file_split = _split_from_file_name(rel)
        columns = [c for c in (image_col, label_col, origin_col, split_col) if c]
        index = 0
        try:
            for batch in pf.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns):
                images = batch.column(image_col)
                if image_field:
                    struct = images
                    images = struct.field(image_field)
                labels = batch.column(label_col).to_pylist()
                origins = batch.column(origin_col).to_pylist() if origin_col else None
                splits = batch.column(split_col).to_pylist() if split_col else None
                for i, data in enumerate(images.to_pylist()):
                    source = f"{rel}#{index}"
                    index += 1
                    raw = labels[i]
                    if raw is None:
                        raise DataError(f"{uri}: row {index - 1} has no label")
                    if names is not None:
                        if not isinstance(raw, int) or not 0 <= raw < len(names):
                            raise DataError(
                                f"{uri}: row {index - 1}: label {raw!r} outside 0..{len(names) - 1}"
                            )
                        raw = names[raw]
                    split = split_of(str(splits[i])) if splits and splits[i] else file_split
                    origin = str(origins[i]) if origins and origins[i] is not None else None
                    if data is None:
                        yield SourceItem(source, str(raw), split, b"", origin, error="no image bytes")
                        continue
                    yield SourceItem(source, str(raw), split, bytes(data), origin)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"{uri}: parquet data could not be read ({exc})") from None


def _relative(uri: str, base: str) -> str:
    base = base.rstrip("/")
    if uri == base:
        return PurePosixPath(uri.replace("\\", "/")).name
    if uri.startswith(base + "/") or uri.startswith(base + os.sep):
        return uri[len(base) + 1 :].replace(os.sep, "/")
    return PurePosixPath(uri).name


def _split_from_file_name(rel: str) -> str | None:
    """HF shard names carry the split: ``data/train-00000-of-00002.parquet`` -> ``train``."""
    p = PurePosixPath(rel)
    for part in [*p.parts[:-1], p.stem.split("-")[0]]:
        s = split_of(part)
        if s:
            return s
    return None


def _is_binary(t: pa.DataType) -> bool:
    return pa.types.is_binary(t) or pa.types.is_large_binary(t)


def _image_column(schema: pa.Schema, configured: str, uri: str) -> tuple[str, str | None]:
    """(column, struct field or None): an ``image`` struct with ``bytes``, or a binary column."""

    def usable(name: str) -> tuple[str, str | None] | None:
        t = schema.field(name).type
        if pa.types.is_struct(t):
            idx = t.get_field_index("bytes")
            if idx >= 0 and (
                pa.types.is_binary(t.field(idx).type) or pa.types.is_large_binary(t.field(idx).type)
            ):
                return name, "bytes"
            return None
        if _is_binary(t):
            return name, None
        return None

    if configured:
        if configured not in schema.names or usable(configured) is None:
            raise DataError(
                f"{uri}: malformed parquet schema: column {configured!r} is missing or holds no image bytes"
            )
        return usable(configured)  # type: ignore[return-value]
    preferred = ["image", "img", "image_bytes", "bytes"]
    for name in preferred + [n for n in schema.names if n not in preferred]:
        if name in schema.names and (found := usable(name)):
            return found
    raise DataError(
        f"{uri}: malformed parquet schema: no image column (want a struct 'image' with 'bytes' or a binary "
        f"column; found {', '.join(f'{f.name}: {f.type}' for f in schema)})"
    )


def _int_label_names(schema: pa.Schema, col: str, configured: list[str], uri: str) -> list[str] | None:
    """Names for an integer label column (HF ``ClassLabel`` metadata, else config); None for strings."""
    t = schema.field(col).type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        return None
    if not pa.types.is_integer(t):
        raise DataError(f"{uri}: malformed parquet schema: label column {col!r} has type {t}")
    meta = schema.metadata or {}
    raw = meta.get(b"huggingface")
    if raw:
        try:
            info = json.loads(raw)
            features = info.get("info", {}).get("features") or info.get("features") or {}
            names = features.get(col, {}).get("names")
            if names:
                return [str(n) for n in names]
        except (ValueError, AttributeError):
            pass
    if configured:
        return list(configured)
    raise DataError(
        f"{uri}: integer labels in {col!r} but no class names in the schema metadata",
        hint="set label_names in configs/data.yaml (index -> name)",
    )


def open_source(uri: str, cfg: DataConfig) -> Source:
    """A :class:`Source` for ``uri`` (folder, .zip, .parquet file or folder, or s3:// of any of those)."""
    if not str(uri).strip():
        raise DataError("no source given")
    try:
        return Source(uri, cfg)
    except StorageError:
        raise
