"""Keep what was seen: a sampled copy of received images, content-addressed, written off the request path.

:class:`ImageStore` holds images by the sha256 of their bytes at ``<store>/<sha256[:2]>/<sha256>`` (a
local folder or an ``s3://`` prefix), so the same image seen twice is stored once and a label, an
inference-log row and a dataset row can all name it by hash. It is the one store of kept images: the
predictor's capture, the review page's queue and label imports write into it; review, growth and the
simulator read it. Putting an image again refreshes its age, so retention counts from the last time
it was seen.

:class:`Capture` is the predictor's side: ``offer`` decides by the sampling rules (a per-model random
rate, plus every image the review policy wants: a fake score inside the uncertain band) and hands the
bytes to a writer thread through a byte-bounded queue. It never blocks and never raises: a full queue
or a failing store drops the image and counts it, so a slow or unreachable store cannot slow or fail a
request. ``close`` writes what is queued (the server calls it on SIGTERM / shutdown).
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import queue
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Protocol

from aidetect import paths, storage
from aidetect.errors import DataError, StorageError
from aidetect.feedback.config import CaptureConfig
from aidetect.feedback.labels import SHA256
from aidetect.monitoring.config import parse_duration

log = logging.getLogger(__name__)

QUEUE_FULL, STORE_ERROR, SHUTDOWN = "queue_full", "store_error", "shutdown"  # drop reasons
STORE_BACKOFF_S = 5.0  # after a failed write, queued images are dropped without trying for this long
STALE_TEMP = timedelta(hours=1)  # a local temp file this old is a crashed write: pruned


def default_root() -> str:
    return str(paths.home() / "captured")


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class PruneReport:
    removed: int
    removed_bytes: int
    kept: int
    kept_bytes: int


class ImageStore:
    """Images by content hash under ``uri`` (default ``$AIDETECT_HOME/captured``)."""

    def __init__(
        self, uri: str = "", retention: timedelta = timedelta(days=30), max_bytes: int = 10 * 1024**3
    ) -> None:
        self.root = uri or default_root()
        self.retention = retention
        self.max_bytes = max_bytes

    @classmethod
    def from_config(cls, cfg: CaptureConfig) -> ImageStore:
        return cls(cfg.store_uri, parse_duration(cfg.retention, "capture.retention"), cfg.max_store_bytes)

    def uri_of(self, sha256: str) -> str:
        if not SHA256.match(sha256):
            raise DataError(f"image store: {sha256[:80]!r} is not a sha256 (64 lowercase hex digits)")
        return storage.join(self.root, sha256[:2], sha256)

    def put(self, data: bytes) -> str:
        """Store ``data`` (atomic: whole or absent; idempotent: same bytes, same object); its sha256."""
        if not data:
            raise DataError("image store: refusing to keep an empty image")
        sha = sha256_of(data)
        uri = self.uri_of(sha)
        if not storage.is_s3(uri) and os.path.exists(uri):
            os.utime(uri)  # seen again: the retention clock restarts; the bytes are the same by hash
            return sha
        storage.write_bytes(uri, data)  # local: temp file + rename; S3: one PUT (same bytes if it existed)
        return sha

    def has(self, sha256: str) -> bool:
        return storage.exists(self.uri_of(sha256))

    def get(self, sha256: str) -> bytes:
        """The image's bytes; :class:`DataError` when the store does not hold it."""
        uri = self.uri_of(sha256)
        try:
            return storage.read_bytes(uri)
        except StorageError:
            if not self.has(sha256):
                raise DataError(f"image store: no image {sha256} under {self.root}") from None
            raise

    def prune(self, now: datetime | None = None) -> PruneReport:
        """Remove images older than the retention period, then the oldest until the store fits its size
        cap (and, locally, temp files of crashed writes)."""
        now = now or datetime.now(UTC)
        images = []
        removed = removed_bytes = 0
        for obj in storage.list_objects(self.root):
            name = PurePosixPath(obj.uri).name
            if SHA256.match(name) and PurePosixPath(obj.uri).parent.name == name[:2]:
                images.append(obj)
            elif name.startswith(".") and name.endswith(".tmp") and now - obj.modified > STALE_TEMP:
                storage.delete(obj.uri)
        images.sort(key=lambda o: o.modified)
        total = sum(o.size for o in images)
        for obj in images:
            if now - obj.modified <= self.retention and total <= self.max_bytes:
                break  # oldest first: everything after this one is younger and fits
            storage.delete(obj.uri)
            removed, removed_bytes, total = removed + 1, removed_bytes + obj.size, total - obj.size
        return PruneReport(removed, removed_bytes, len(images) - removed, total)


class CaptureMetrics(Protocol):
    """Counters the capture reports to (the server's Prometheus metrics)."""

    def captured(self, model: str) -> None: ...

    def dropped(self, model: str, reason: str) -> None: ...


class Capture:
    """Sampled, bounded, background keeping of one served model's received images."""

    def __init__(
        self,
        cfg: CaptureConfig,
        model_name: str,
        metrics: CaptureMetrics | None = None,
        *,
        store: ImageStore | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.cfg = cfg
        self.model_name = model_name
        self.metrics = metrics  # picklable (REST workers > 1 unpickle the predictor)
        self.store = store or ImageStore.from_config(cfg)
        self.rate = cfg.model_rates.get(model_name, cfg.sample_rate)
        self.rng = rng or random.Random()
        self._start()

    def _start(self) -> None:
        self._queue: queue.SimpleQueue[tuple[str, bytes] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._queued_bytes = 0
        self._pending: set[str] = set()  # hashes queued, so one image sent twice is queued once
        self.kept = 0
        self.drops: Counter[str] = Counter()
        self._down_until = 0.0
        self._store_bytes: int | None = None  # as of the last prune, plus what was written since
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="aidetect-capture", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def __getstate__(self) -> dict[str, object]:
        """Pickled into REST worker processes as its settings: each process runs its own writer."""
        return {k: self.__dict__[k] for k in ("cfg", "model_name", "metrics", "store", "rate", "rng")}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._start()

    # -- the request side --------------------------------------------------------------------------
    def wants(self, fake_score: float | None) -> bool:
        """The sampling rule: every image in the uncertain band, the rest at the model's rate."""
        cfg = self.cfg
        if fake_score is not None and cfg.uncertain_low <= fake_score <= cfg.uncertain_high:
            return True
        return self.rate > 0 and self.rng.random() < self.rate

    def offer(self, sha256: str, data: bytes, fake_score: float | None) -> bool:
        """Queue the image for keeping if the sampling rule wants it; True when it will be kept.
        Never blocks: beyond ``max_queue_bytes`` waiting, the image is dropped and counted."""
        if self._closed or not self.cfg.enabled or not data or not self.wants(fake_score):
            return False
        with self._lock:
            if sha256 in self._pending:
                return True
            room = self._queued_bytes + len(data) <= self.cfg.max_queue_bytes
            if room:
                self._queued_bytes += len(data)
                self._pending.add(sha256)
        if not room:
            self._drop(QUEUE_FULL)
            return False
        self._queue.put((sha256, data))
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued, stop the writer; what is still unwritten after ``timeout`` is
        dropped and counted."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)
        while True:  # left behind by a writer that timed out, or offered while closing
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self._done(item, SHUTDOWN)
        log.warning("capture closed: %d images kept, dropped %s", self.kept, dict(self.drops) or "none")

    # -- the writer --------------------------------------------------------------------------------
    def _drop(self, reason: str) -> None:
        with self._lock:
            self.drops[reason] += 1
        if self.metrics is not None:
            self.metrics.dropped(self.model_name, reason)

    def _done(self, item: tuple[str, bytes], dropped: str = "") -> None:
        sha, data = item
        with self._lock:
            self._queued_bytes -= len(data)
            self._pending.discard(sha)
        if dropped:
            self._drop(dropped)

    def _run(self) -> None:
        every = parse_duration(self.cfg.prune_every, "capture.prune_every").total_seconds()
        next_prune = time.monotonic()  # at start: apply retention, learn the store's size
        while True:
            if time.monotonic() < next_prune:
                try:
                    item = self._queue.get(timeout=max(0.05, next_prune - time.monotonic()))
                except queue.Empty:
                    item = ()  # type: ignore[assignment]
                if item is None:
                    return
                if item:
                    self._write(item)
            over = self._store_bytes is not None and self._store_bytes > self.store.max_bytes
            if over or time.monotonic() >= next_prune:
                self._prune()
                next_prune = time.monotonic() + every

    def _write(self, item: tuple[str, bytes]) -> None:
        data = item[1]
        if time.monotonic() < self._down_until:
            self._done(item, STORE_ERROR)
            return
        try:
            self.store.put(data)
        except Exception as exc:  # any store failure: drop and count, keep serving
            self._down_until = time.monotonic() + STORE_BACKOFF_S
            log.error(
                "capture: store %s failed (dropping for %.0f s): %s", self.store.root, STORE_BACKOFF_S, exc
            )
            self._done(item, STORE_ERROR)
            return
        self.kept += 1
        if self._store_bytes is not None:
            self._store_bytes += len(data)
        if self.metrics is not None:
            self.metrics.captured(self.model_name)
        self._done(item)

    def _prune(self) -> None:
        try:
            report = self.store.prune()
        except Exception as exc:  # retried at the next interval
            log.error("capture: pruning %s failed: %s", self.store.root, exc)
            self._store_bytes = None  # unknown until a prune succeeds (tried again at the interval)
            return
        self._store_bytes = report.kept_bytes
        if report.removed:
            log.info(
                "capture: pruned %d images (%d bytes) from %s",
                report.removed,
                report.removed_bytes,
                self.store.root,
            )
