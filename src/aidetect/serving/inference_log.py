"""Inference log: one compact feature row per prediction, written as parquet off the request path.

Requests hand their images and results to :meth:`InferenceLog.submit` (a non-blocking put on a bounded
queue); a background thread computes the cheap image features, buffers rows and flushes them to
``<root>/<model>/date=YYYY-MM-DD/<time>-<id>.parquet`` (a local folder or ``s3://`` prefix) every
``flush_rows`` rows or ``flush_seconds`` seconds, and once more on :meth:`close`. When the queue is full
the batch is dropped and counted, so a slow store never slows requests.

Columns besides the image features: ``label`` (as served), ``probability_fake`` (the decision rule's fake
score, the same column the drift reference profile holds), ``p_<label>`` per class, ``sha256`` (of the
image bytes as received, the key labels join on; "" for pixel / tensor inputs and texts), ``kept``
(whether the capture took the image for the image store) and ``track`` (stable | canary); for image models
``verdict`` (the provenance-aware verdict, configs/verdict.yaml) and ``provenance`` (the image's signals,
a JSON list).
"""

from __future__ import annotations

import atexit
import io
import logging
import queue
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from aidetect import storage
from aidetect.data.features import FEATURE_COLUMNS, image_features
from aidetect.data.imaging import DEFAULT_MAX_PIXELS, decode_rgb
from aidetect.data.text.features import text_features
from aidetect.decision import DecisionSpec

log = logging.getLogger(__name__)


@dataclass
class LoggedBatch:
    ts: datetime
    images: Sequence[Image.Image | None]  # None: decode ``encoded`` (on the writer thread)
    encoded: Sequence[bytes | None]
    probabilities: np.ndarray  # [N, C]; the label and fake score follow from the decision rule
    texts: Sequence[str] | None = None  # a text model's normalised texts: text features instead
    verdicts: Sequence[str] = ()  # an image model's verdict per image, as served
    provenance: Sequence[str] = ()  # an image model's provenance signals per image (JSON lists)
    sha256: Sequence[str] = ()  # per image, of the bytes as received ("" for pixel / tensor inputs)
    kept: Sequence[bool] = ()  # per image: accepted by the capture for the image store


def _held_bytes(batch: LoggedBatch) -> int:
    """What a queued batch keeps alive: its encoded images and its decoded ones."""
    encoded = sum(len(e) for e in batch.encoded if e is not None)
    decoded = sum(img.width * img.height * len(img.getbands()) for img in batch.images if img is not None)
    return encoded + decoded + batch.probabilities.nbytes


RETRY_FLUSHES = 4  # flushes' worth of rows kept across a failed write, for the next attempt


class InferenceLog:
    """Buffered, bounded, background parquet writer for prediction rows."""

    def __init__(
        self,
        root: str,
        model_name: str,
        model_version: str,
        decision: DecisionSpec,
        flush_rows: int = 512,
        flush_seconds: float = 30.0,
        queue_size: int = 10_000,
        queue_bytes: int = 64 * 1024 * 1024,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        log_texts: bool = False,
        track: str = "stable",
    ) -> None:
        self.root = root
        self.model_name = model_name
        self.model_version = model_version
        self.decision = decision
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.queue_size = max(1, queue_size)
        self.queue_bytes = queue_bytes  # images and encoded bytes waiting for the writer, at most
        self.max_pixels = max_pixels  # the writer decodes within the server's pixel limit
        self.log_texts = log_texts  # a text model's rows keep the text itself only when asked to
        self.track = track  # stable | canary, on every row
        self._start()

    def _start(self) -> None:
        self._queue: queue.Queue[LoggedBatch | None] = queue.Queue(maxsize=self.queue_size)
        self._rows: list[dict[str, object]] = []
        self.dropped = 0
        self._retry_at = 0.0  # monotonic time before which a failed store is not tried again
        self._queued_bytes = 0
        self._bytes_lock = threading.Lock()
        self.written_rows = 0
        self.files: list[str] = []
        self._thread = threading.Thread(target=self._run, name="aidetect-inference-log", daemon=True)
        self._closed = False
        self._thread.start()
        atexit.register(self.close)  # flush on interpreter exit too (e.g. a REST worker process)

    _SETTINGS = (
        "root",
        "model_name",
        "model_version",
        "decision",
        "flush_rows",
        "flush_seconds",
        "queue_size",
        "queue_bytes",
        "max_pixels",
        "log_texts",
        "track",
    )

    def __getstate__(self) -> dict[str, object]:
        """Pickled into REST worker processes as its settings: each process writes its own files."""
        return {k: self.__dict__[k] for k in self._SETTINGS}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._start()

    def submit(self, batch: LoggedBatch) -> bool:
        """Queue a batch without blocking; ``False`` (and counted as dropped) when the queue holds
        ``queue_size`` batches or this batch would take its images past ``queue_bytes``."""
        if self._closed:
            return False
        size = _held_bytes(batch)
        with self._bytes_lock:
            room = self._queued_bytes + size <= self.queue_bytes
            if room:
                self._queued_bytes += size
        try:
            if not room:
                raise queue.Full
            self._queue.put_nowait(batch)
            return True
        except queue.Full:
            if room:
                self._release(size)
            self.dropped += len(batch.probabilities)
            return False

    def _release(self, size: int) -> None:
        with self._bytes_lock:
            self._queued_bytes -= size

    def close(self, timeout: float = 30.0) -> None:
        """Flush everything queued and stop the writer thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)
        # once per process, at shutdown: what an operator (and bench/soak.py) checks against predictions
        log.warning("inference log closed: %d rows written, %d dropped", self.written_rows, self.dropped)

    def _rows_of(self, batch: LoggedBatch) -> list[dict[str, object]]:
        rule = self.decision
        labels = rule.names(rule.decide(batch.probabilities))
        fake_score = rule.fake_score(batch.probabilities)
        rows = []
        for i, label in enumerate(labels):
            probs = batch.probabilities[i]
            row: dict[str, object] = {
                "ts": batch.ts,
                "model_name": self.model_name,
                "model_version": self.model_version,
                "label": label,
                "probability_fake": float(fake_score[i]),
                "sha256": batch.sha256[i] if batch.sha256 else "",
                "kept": bool(batch.kept[i]) if batch.kept else False,
                "track": self.track,
            }
            for j, name in enumerate(rule.labels):
                row[f"p_{name}"] = float(probs[j])
            if batch.verdicts:
                row["verdict"], row["provenance"] = batch.verdicts[i], batch.provenance[i]
            if batch.texts is not None:
                row.update(text_features(batch.texts[i]))
                if self.log_texts:
                    row["text"] = batch.texts[i]
                rows.append(row)
                continue
            try:
                img, encoded = batch.images[i], batch.encoded[i]
                if img is None and encoded is not None:
                    img = decode_rgb(encoded, self.max_pixels)
                if img is None:
                    raise ValueError("neither the image nor its encoded bytes were logged")
                row.update(image_features(img, encoded))
            except Exception as exc:  # a feature failure must not lose the prediction row
                log.warning("image features failed: %s", exc)
                row.update(dict.fromkeys(FEATURE_COLUMNS, float("nan")))
            rows.append(row)
        return rows

    def _run(self) -> None:
        last_flush = time.monotonic()
        while True:
            timeout = max(0.05, self.flush_seconds - (time.monotonic() - last_flush))
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:  # nothing new: only the time-based flush below
                pass
            else:
                if item is None:
                    self._flush(final=True)
                    return
                self._rows.extend(self._rows_of(item))
                self._release(_held_bytes(item))
            due = len(self._rows) >= self.flush_rows or time.monotonic() - last_flush >= self.flush_seconds
            if due and time.monotonic() >= self._retry_at:
                self._flush()
                last_flush = time.monotonic()

    def _flush(self, final: bool = False) -> None:
        """Write the buffered rows as one file. When the store fails, the oldest
        ``RETRY_FLUSHES * flush_rows`` rows stay buffered for the next attempt (one ``flush_seconds``
        later), so a short outage loses nothing; rows beyond that, and all of them at shutdown, are
        dropped and counted."""
        if not self._rows:
            return
        rows, self._rows = self._rows, []
        table = pa.Table.from_pylist(rows)
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd")
        now = datetime.now(UTC)
        name = f"{now:%H%M%S}-{uuid.uuid4().hex[:12]}.parquet"
        uri = storage.join(self.root, self.model_name, f"date={now:%Y-%m-%d}", name)
        try:
            storage.write_bytes(uri, buf.getvalue())
        except Exception as exc:  # keep serving: retry the oldest rows later, drop and count the rest
            keep = 0 if final else min(len(rows), RETRY_FLUSHES * self.flush_rows)
            self._rows, self._retry_at = rows[:keep], time.monotonic() + self.flush_seconds
            self.dropped += len(rows) - keep
            msg = "inference log flush to %s failed (%d rows kept for a retry, %d dropped): %s"
            log.error(msg, uri, keep, len(rows) - keep, exc)
            return
        self._retry_at = 0.0
        self.written_rows += len(rows)
        self.files.append(uri)
