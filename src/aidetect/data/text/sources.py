"""Read labelled texts from CSV, JSON Lines or (Hugging Face style) parquet into uniform rows.

Every row carries its place in the source (``row N`` for CSV data rows and parquet rows, ``line N`` for
JSONL), so every error names it. Structural problems (a missing column, a broken quote, a line that is
not JSON) fail the whole read; problems of one text (invalid UTF-8, wrong type) are reported on the row
and decided by the ingest policy.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from aidetect import storage
from aidetect.data.text.settings import TextDataConfig
from aidetect.errors import DataError, StorageError

KINDS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
OPTIONAL = ("group", "domain", "generator")


@dataclass
class TextRow:
    """One source row: ``text`` is None when ``error`` says why it could not be read."""

    where: str
    text: str | None
    label: Any
    group: str | None = None
    domain: str | None = None
    generator: str | None = None
    error: str | None = None


def source_kind(uri: str) -> str:
    suffix = Path(uri.rstrip("/")).suffix.lower()
    if suffix not in KINDS:
        raise DataError(f"{uri}: not a text source (expected one of {', '.join(sorted(KINDS))})")
    return KINDS[suffix]


def is_text_source(uri: str) -> bool:
    """True for a file name that :func:`read_rows` reads (CSV, JSONL, parquet)."""
    return Path(uri.rstrip("/")).suffix.lower() in KINDS


def is_text_data(uri: str, text_column: str = "text") -> bool:
    """True for CSV and JSONL files, and for a parquet file with a ``text_column`` and no ``image`` one
    (image parquet files carry an ``image`` struct or binary column)."""
    if not is_text_source(uri):
        return False
    if source_kind(uri) != "parquet":
        return True
    try:
        with storage.local_copy(uri) as path:
            if path.is_dir():
                return False
            names = pq.read_schema(path).names
    except (OSError, pa.ArrowInvalid, StorageError):
        return False
    return text_column in names and "image" not in names


def _columns(cfg: TextDataConfig) -> dict[str, str]:
    """role -> column name for the optional columns that are configured."""
    named = {"group": cfg.group_column, "domain": cfg.domain_column, "generator": cfg.generator_column}
    return {role: col for role, col in named.items() if col}


def _check_header(uri: str, header: list[str], cfg: TextDataConfig) -> dict[str, str]:
    for role, col in (("text", cfg.text_column), ("label", cfg.label_column)):
        if col not in header:
            raise DataError(
                f"{uri}: no {role} column {col!r} (columns: {', '.join(map(str, header[:20])) or 'none'})",
                hint=f"set {role}_column in configs/text_data.yaml",
            )
    return {role: col for role, col in _columns(cfg).items() if col in header}


def _optional(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    return text or None


def _row(where: str, raw: Any, label: Any, extra: dict[str, Any]) -> TextRow:
    row = TextRow(where, None, label, **{k: _optional(v) for k, v in extra.items()})
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            row.error = f"not valid UTF-8 (byte {exc.start})"
            return row
    if isinstance(raw, str):  # undecodable CSV bytes arrive as lone surrogates: clean_text refuses them
        row.text = raw
    elif raw is None or (isinstance(raw, float) and raw != raw):
        row.text = ""
    else:
        row.error = f"text is a {type(raw).__name__}, not a string"
    return row


def _csv_rows(path: Path, uri: str, cfg: TextDataConfig) -> Iterator[TextRow]:
    # Over-long texts are read and then refused by the byte limit, naming their row (1 GiB: a sanity bound).
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
    with path.open("rb") as fh:
        text = io.TextIOWrapper(fh, encoding="utf-8", errors="surrogateescape", newline="")
        reader = csv.reader(text, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                raise DataError(f"{uri}: empty CSV file (no header row)")
            header = [h.lstrip("\ufeff").strip() for h in header]
            roles = _check_header(uri, header, cfg)
            index = {name: i for i, name in enumerate(header)}
            n = 0
            for n, values in enumerate(reader, start=1):
                if len(values) != len(header):
                    raise DataError(
                        f"{uri}: row {n} (line {reader.line_num}) has {len(values)} fields, "
                        f"the header has {len(header)} (a broken quote or a stray delimiter?)"
                    )
                extra = {role: values[index[col]] for role, col in roles.items()}
                yield _row(f"row {n}", values[index[cfg.text_column]], values[index[cfg.label_column]], extra)
        except csv.Error as exc:
            raise DataError(
                f"{uri}: CSV broken near line {reader.line_num} (after data row {n if header else 0}): {exc}",
                hint="an unbalanced double quote usually causes this",
            ) from None


def _jsonl_rows(path: Path, uri: str, cfg: TextDataConfig) -> Iterator[TextRow]:
    roles = _columns(cfg)
    with path.open("rb") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except UnicodeDecodeError:
                yield TextRow(f"line {n}", None, None, error="not valid UTF-8")
                continue
            except ValueError as exc:
                raise DataError(f"{uri}: line {n} is not valid JSON ({exc})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{uri}: line {n} is a JSON {type(obj).__name__}, expected an object")
            for role, col in (("text", cfg.text_column), ("label", cfg.label_column)):
                if col not in obj:
                    raise DataError(
                        f"{uri}: line {n} has no {role} field {col!r} (fields: {', '.join(list(obj)[:20])})"
                    )
            extra = {role: obj.get(col) for role, col in roles.items()}
            yield _row(f"line {n}", obj[cfg.text_column], obj[cfg.label_column], extra)


def _parquet_rows(path: Path, uri: str, cfg: TextDataConfig) -> Iterator[TextRow]:
    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"{uri}: not a readable parquet file ({exc})") from None
    roles = _check_header(uri, pf.schema_arrow.names, cfg)
    columns = [cfg.text_column, cfg.label_column, *roles.values()]
    n = 0
    for batch in pf.iter_batches(batch_size=2048, columns=columns):
        data = {name: batch.column(name).to_pylist() for name in columns}
        for i in range(batch.num_rows):
            extra = {role: data[col][i] for role, col in roles.items()}
            yield _row(f"row {n + i + 1}", data[cfg.text_column][i], data[cfg.label_column][i], extra)
        n += batch.num_rows


def read_rows(uri: str, cfg: TextDataConfig) -> Iterator[TextRow]:
    """Stream the rows of a CSV, JSONL or parquet file (local path or ``s3://``)."""
    kind = source_kind(uri)
    reader = {"csv": _csv_rows, "jsonl": _jsonl_rows, "parquet": _parquet_rows}[kind]
    try:
        with storage.local_copy(uri) as path:
            if path.is_dir():
                raise DataError(f"{uri}: is a folder, expected a {kind} file")
            yield from reader(path, uri, cfg)
    except StorageError as exc:
        raise DataError(f"cannot read text source {uri}: {exc}") from None
