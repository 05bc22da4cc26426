"""Traffic with ground truth: replay a labelled image source against a running server, shift it, review it.

The simulator streams a labelled source (folder, zip, HF parquet, ``s3://``; :func:`open_source`) to a
server's V2 REST infer endpoint at a paced rate (binary image input, the way clients send images),
switches to a second source after ``shift_after`` seconds (a new generator, a new camera: the drift the
loop must notice), and plays a reviewer: ``review_delay`` seconds after an image was sent, it looks
the image up in the image store by its sha256 (kept by the server's capture, or not), and labels
``review_share`` of the kept ones with the source's true label through a review path (the label
import, or Label Studio as a person would).

Memory stays bounded whatever the source: the sources are streamed, at most ``concurrency`` requests
are in flight, and the reviewer holds one small entry per image waiting for its delay (at most
:data:`MAX_WATCHED`; beyond, images are sent but not reviewed, and counted as ``unwatched``).
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import httpx

from aidetect.data.config import DataConfig
from aidetect.data.labels import LabelMatcher
from aidetect.data.sources import SourceItem, open_source
from aidetect.errors import ConfigError, DataError, ServiceUnavailableError
from aidetect.feedback.capture import ImageStore
from aidetect.feedback.labels import LabelRecord
from aidetect.serving.client import V2Client, build_image_request

log = logging.getLogger(__name__)

SOURCE = "simulated-reviewer"
MAX_WATCHED = 100_000  # images waiting for the reviewer's delay
RECHECK_S = 2.0  # an image not yet in the store at its due time is looked up once more this much later
FLUSH_RECORDS, FLUSH_SECONDS = 200, 2.0  # labels go out in batches
REVIEW_VIAS = ("import", "label-studio", "none")


@dataclass
class Plan:
    """What to replay, how fast, for how long, and how the simulated reviewer works."""

    url: str
    source: str
    shift_to: str = ""  # a second source, played from ``shift_after`` seconds on
    shift_after: float = 0.0
    duration: float = 0.0  # seconds; 0: until ``limit`` or the sources run out
    limit: int = 0  # images; 0: no limit
    rate: float = 10.0  # requests per second
    batch: int = 1  # images per request
    concurrency: int = 4  # requests in flight at most
    model: str = ""  # "": the one model the server serves
    token: str | None = None
    review_share: float = 0.0  # of the kept images, labelled by the simulated reviewer
    review_delay: float = 0.0  # seconds between sending an image and reviewing it
    review_via: str = "import"
    seed: int = 0
    timeout: float = 30.0

    def validate(self) -> None:
        if self.rate <= 0 or self.batch < 1 or self.concurrency < 1:
            raise ConfigError("rate must be > 0, batch and concurrency >= 1")
        if self.duration < 0 or self.limit < 0 or self.shift_after < 0 or self.review_delay < 0:
            raise ConfigError("duration, limit, shift-after and review-delay must not be negative")
        if not 0.0 <= self.review_share <= 1.0:
            raise ConfigError(f"review-share: {self.review_share} is not in [0, 1]")
        if self.review_via not in REVIEW_VIAS:
            raise ConfigError(f"review-via: {self.review_via!r} is not one of {', '.join(REVIEW_VIAS)}")
        if bool(self.shift_to) != bool(self.shift_after):
            raise ConfigError("shift-to and shift-after go together")


@dataclass
class PhaseStats:
    """Counts for one source of the run (``base``, then ``shift``)."""

    name: str
    source: str
    sent: int = 0  # images sent
    ok: int = 0  # images answered 200
    errors: int = 0  # images whose request failed
    correct: int = 0  # answered with the source's label
    skipped: int = 0  # unreadable in the source
    checked: int = 0  # looked up in the image store by the reviewer
    kept: int = 0  # of those, found in the store
    labelled: int = 0
    unwatched: int = 0  # answered but never looked up (the reviewer's bound)

    def summary(self) -> dict[str, Any]:
        out = asdict(self)
        out["accuracy"] = round(self.correct / self.ok, 4) if self.ok else None
        return out


class ReviewPath(Protocol):
    """Where the simulated reviewer's decisions go."""

    def submit(self, records: list[LabelRecord], images: dict[str, bytes]) -> int:
        """Record ``records`` (``images``: their bytes by sha256, for paths that need them); the
        number recorded."""
        ...


@dataclass(order=True)
class _Watched:
    due: float
    sha256: str = field(compare=False)
    label: str = field(compare=False)
    phase: PhaseStats = field(compare=False)
    rechecked: bool = field(default=False, compare=False)


class Reviewer:
    """A thread that looks up sent images after the delay and labels a share of the kept ones."""

    def __init__(
        self,
        store: ImageStore,
        path: ReviewPath | None,
        share: float,
        delay: float,
        model: tuple[str, str],
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.path, self.share, self.delay = store, path, share, delay
        self.model_name, self.model_version = model
        self.rng = random.Random(seed)
        self.clock = clock
        self._heap: list[_Watched] = []
        self._cond = threading.Condition()
        self._closing = False
        self._labelled: set[str] = set()
        self._records: list[LabelRecord] = []
        self._last_flush = clock()
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="aidetect-sim-reviewer", daemon=True)
        self._thread.start()

    def watch(self, sha256: str, label: str, phase: PhaseStats) -> None:
        with self._cond:
            if len(self._heap) >= MAX_WATCHED:
                phase.unwatched += 1
                return
            heapq.heappush(self._heap, _Watched(self.clock() + self.delay, sha256, label, phase))
            self._cond.notify()

    def finish(self) -> None:
        """Review everything still waiting (after its delay), submit the last labels, stop."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    item = (
                        heapq.heappop(self._heap)
                        if self._heap and self._heap[0].due <= self.clock()
                        else None
                    )
                    if item is None:
                        if self._closing and not self._heap:
                            break
                        wait = self._heap[0].due - self.clock() if self._heap else FLUSH_SECONDS
                        self._cond.wait(min(max(wait, 0.01), FLUSH_SECONDS))
                if item is not None:
                    self._review(item)
                due = self.clock() - self._last_flush >= FLUSH_SECONDS
                if len(self._records) >= FLUSH_RECORDS or (self._records and due):
                    self._flush()
            self._flush()
        except Exception as exc:  # handed to finish(): the run reports it as its error
            self.error = exc

    def _review(self, item: _Watched) -> None:
        if not self.store.has(item.sha256):
            if not item.rechecked:  # the capture writes off the request path: look once more later
                item.due, item.rechecked = self.clock() + RECHECK_S, True
                with self._cond:
                    heapq.heappush(self._heap, item)
                return
            item.phase.checked += 1
            return
        item.phase.checked += 1
        item.phase.kept += 1
        if self.path is None or item.sha256 in self._labelled or self.rng.random() >= self.share:
            return
        self._labelled.add(item.sha256)
        rec = LabelRecord(
            sha256=item.sha256,
            label=item.label,
            source=SOURCE,
            author="simulator",
            model_name=self.model_name,
            model_version=self.model_version,
            note=f"phase:{item.phase.name}",
        )
        self._records.append(rec)
        item.phase.labelled += 1

    def _flush(self) -> None:
        self._last_flush = self.clock()
        if not self._records or self.path is None:
            return
        records, self._records = self._records, []
        images = {r.sha256: self.store.get(r.sha256) for r in records} if _needs_images(self.path) else {}
        self.path.submit(records, images)


def _needs_images(path: ReviewPath) -> bool:
    return bool(getattr(path, "needs_images", False))


class LabelLogPath:
    """The import review path: the reviewer's labels are appended to the label log, as the feedback
    import would (one object per batch)."""

    def __init__(self, root: str = "") -> None:
        from aidetect.feedback.labels import LabelLog

        self.log = LabelLog(root)

    def submit(self, records: list[LabelRecord], images: dict[str, bytes]) -> int:
        self.log.append(records)
        return len(records)


def _items(uri: str, cfg: DataConfig, phase: PhaseStats, cycle: bool) -> Iterator[SourceItem]:
    """The source's readable items, streamed; again from the start when ``cycle`` (the run has
    another bound: a duration or a limit)."""
    while True:
        found = 0
        for item in open_source(uri, cfg):
            if item.error is not None:
                phase.skipped += 1
                continue
            found += 1
            yield item
        if not found:
            raise DataError(f"source {uri}: no readable images")
        if not cycle:
            return


class Simulation:
    """One run of a :class:`Plan` (build, then :meth:`run`)."""

    def __init__(
        self,
        plan: Plan,
        store: ImageStore,
        path: ReviewPath | None,
        data_cfg: DataConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        plan.validate()
        self.plan, self.store, self.path, self.clock = plan, store, path, clock
        self.data_cfg = data_cfg or DataConfig()
        self.phases = [PhaseStats("base", plan.source)]
        if plan.shift_to:
            self.phases.append(PhaseStats("shift", plan.shift_to))
        for p in self.phases:  # a missing source fails here, before any traffic
            open_source(p.source, self.data_cfg)
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(plan.concurrency)

    def run(self) -> dict[str, Any]:
        plan = self.plan
        client = V2Client(plan.url, plan.token, timeout=plan.timeout)
        model = plan.model or client.default_model()
        labels, _, _ = client.model_parameters(model)
        version = _model_version(client, model)
        matcher = LabelMatcher(labels, self.data_cfg.synonyms)
        want_review = plan.review_via != "none"
        reviewer = Reviewer(
            self.store, self.path if want_review else None, plan.review_share, plan.review_delay,
            (model, version), plan.seed, self.clock,
        )  # fmt: skip
        start = self.clock()
        try:
            with ThreadPoolExecutor(plan.concurrency, thread_name_prefix="aidetect-sim") as pool:
                for n, (phase, batch) in enumerate(self._batches(start, matcher)):
                    pause = start + n / plan.rate - self.clock()
                    if pause > 0:
                        time.sleep(pause)
                    self._slots.acquire()
                    pool.submit(self._send, client, model, phase, batch, reviewer)
        finally:
            reviewer.finish()
            client.http.close()
        return {
            "url": plan.url,
            "model": model,
            "model_version": version,
            "review_via": plan.review_via,
            "seconds": round(self.clock() - start, 2),
            **{
                k: sum(getattr(p, k) for p in self.phases)
                for k in ("sent", "ok", "errors", "kept", "labelled")
            },
            "phases": [p.summary() for p in self.phases],
        }

    def _batches(
        self, start: float, matcher: LabelMatcher
    ) -> Iterator[tuple[PhaseStats, list[tuple[bytes, str]]]]:
        """Batches of (image bytes, true label) in the plan's order, until a bound is reached."""
        plan = self.plan
        bounded = bool(plan.duration or plan.limit)
        sources = [_items(p.source, self.data_cfg, p, cycle=bounded or i < len(self.phases) - 1)
                   for i, p in enumerate(self.phases)]  # fmt: skip
        sent = 0
        current = 0
        batch: list[tuple[bytes, str]] = []
        while True:
            elapsed = self.clock() - start
            if (plan.duration and elapsed >= plan.duration) or (plan.limit and sent >= plan.limit):
                break
            if current == 0 and len(self.phases) > 1 and elapsed >= plan.shift_after:
                if batch:
                    yield self.phases[0], batch
                    batch = []
                current = 1
            item = next(sources[current], None)
            if item is None:
                break
            batch.append(
                (item.data, matcher.match(item.label, f"{self.phases[current].source}: {item.source}"))
            )
            sent += 1
            if len(batch) == plan.batch:
                yield self.phases[current], batch
                batch = []
        if batch:
            yield self.phases[current], batch

    def _send(
        self,
        client: V2Client,
        model: str,
        phase: PhaseStats,
        batch: list[tuple[bytes, str]],
        reviewer: Reviewer,
    ) -> None:
        try:
            body, headers = build_image_request([data for data, _ in batch], outputs=("label",))
            try:
                r = client.http.post(f"/v2/models/{model}/infer", content=body, headers=headers)
                answered = r.json()["outputs"][0]["data"] if r.status_code == 200 else None
            except (httpx.HTTPError, ValueError, KeyError, IndexError) as exc:
                log.warning("simulate: request failed: %s", exc)
                answered = None
            with self._lock:
                phase.sent += len(batch)
                if answered is None or len(answered) != len(batch):
                    phase.errors += len(batch)
                    return
                phase.ok += len(batch)
                phase.correct += sum(a == label for a, (_, label) in zip(answered, batch, strict=True))
            for data, label in batch:
                reviewer.watch(hashlib.sha256(data).hexdigest(), label, phase)
        finally:
            self._slots.release()


def _model_version(client: V2Client, model: str) -> str:
    """The served version, from the model's metadata (for the label records)."""
    try:
        meta = client.http.get(f"/v2/models/{model}").json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ServiceUnavailableError(f"cannot read the metadata of {model}: {exc}") from None
    return str((meta.get("parameters") or {}).get("model_version") or (meta.get("versions") or [""])[0])


def review_path(via: str, labels_root: str = "", **label_studio: Any) -> ReviewPath | None:
    """The review path named ``via``: ``import`` (the label log), ``label-studio``, or ``none``."""
    if via == "import":
        return LabelLogPath(labels_root)
    if via == "none":
        return None
    raise ConfigError(f"review-via {via}: not available")
