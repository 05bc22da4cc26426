"""Read the current window of the inference log (``<root>/<model>/date=YYYY-MM-DD/*.parquet``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa

from aidetect import storage
from aidetect.errors import DataError, StorageError

REQUIRED_LOG_COLUMNS = ("ts", "model_name", "model_version")


def _days(start: datetime, end: datetime) -> list[str]:
    day, last, out = start.date(), end.date(), []
    while day <= last:
        out.append(day.isoformat())
        day += timedelta(days=1)
    return out


def _read_parquet(uri: str) -> pa.Table:
    try:
        return storage.read_parquet(uri, "inference log file")
    except StorageError as exc:
        raise DataError(str(exc)) from None


def log_files(root: str, model_name: str, start: datetime, end: datetime) -> list[str]:
    """The parquet files of the date partitions overlapping ``[start, end]``."""
    base = storage.join(root, model_name)
    if not storage.is_s3(root) and not storage.exists(root):
        raise StorageError(f"inference log root not found: {root}")
    files: list[str] = []
    for day in _days(start, end):
        files.extend(storage.list_uris(storage.join(base, f"date={day}") + "/", suffix=".parquet"))
    return files


def read_window(
    root: str,
    model_name: str,
    *,
    since: timedelta,
    until: datetime | None = None,
    model_version: str | None = None,
    columns: Sequence[str] = (),
    optional: Mapping[str, object] | None = None,
) -> pd.DataFrame:
    """Rows logged for ``model_name`` in ``(until - since, until]`` (optionally one model version).

    Raises :class:`DataError` when a file lacks one of ``columns`` (or the log's own columns), and
    :class:`StorageError` / ``ServiceUnavailableError`` when the store cannot be read. An empty window
    is returned as an empty frame; the caller decides what too few rows means. ``optional`` columns
    (name -> default) are filled with the default in files written before the column existed.
    """
    optional = dict(optional or {})
    end = (until or datetime.now(UTC)).astimezone(UTC)
    start = end - since
    needed = list(dict.fromkeys([*REQUIRED_LOG_COLUMNS, *columns]))
    frames = []
    for uri in log_files(root, model_name, start, end):
        table = _read_parquet(uri)
        missing = [c for c in needed if c not in table.column_names]
        if missing:
            raise DataError(f"inference log file {uri} lacks column(s) {', '.join(missing)}")
        frame = table.select(needed).to_pandas()
        for name, default in optional.items():
            frame[name] = table.column(name).to_pandas() if name in table.column_names else default
        frames.append(frame)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in [*needed, *optional]})
    df = pd.concat(frames, ignore_index=True)
    ts = pd.to_datetime(df["ts"], utc=True)
    keep = (ts > pd.Timestamp(start)) & (ts <= pd.Timestamp(end))
    if model_version is not None:
        keep &= df["model_version"].astype(str) == str(model_version)
    return df.loc[keep].reset_index(drop=True)
