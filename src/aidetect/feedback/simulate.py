"""Traffic with ground truth: replay a labelled image source against a running server, shift it, review it.

The simulator streams a labelled source (folder, zip, HF parquet, ``s3://``; :func:`open_source`) to a
server's V2 REST infer endpoint at a paced rate (binary image input, the way clients send images),
switches to a second source after ``shift_after`` seconds (a new generator, a new camera: the drift the
loop must notice), and plays a reviewer (:mod:`aidetect.feedback.sim_review`): ``review_delay``
seconds after an image was answered, it looks the image up in the image store by its sha256 (kept by
the server's capture, or not), and labels ``review_share`` of the kept ones with the source's true
label through a review path (the feedback import, or Label Studio as a person would).

Memory stays bounded whatever the source: the sources are streamed (through a shuffle buffer of
``shuffle`` images, since sources are often sorted by class), at most ``concurrency`` requests
are in flight, and the reviewer holds one small entry per image waiting for its delay (at most
:data:`~aidetect.feedback.sim_review.MAX_WATCHED`; beyond, images are sent but not reviewed,
and counted as ``unwatched``).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from aidetect.data.config import DataConfig
from aidetect.data.labels import LabelMatcher
from aidetect.data.sources import SourceItem, open_source
from aidetect.errors import ConfigError, DataError, ServiceUnavailableError
from aidetect.feedback.capture import ImageStore
from aidetect.feedback.sim_review import PhaseStats, Reviewer, ReviewPath, ServedModel
from aidetect.serving.client import V2Client, build_image_request

log = logging.getLogger(__name__)

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
    shuffle: int = 256  # images held to shuffle each source's order (0: the source's own order)
    seed: int = 0
    timeout: float = 30.0

    def validate(self) -> None:
        if self.rate <= 0 or self.batch < 1 or self.concurrency < 1 or self.shuffle < 0:
            raise ConfigError("rate must be > 0, batch and concurrency >= 1, shuffle >= 0")
        if self.duration < 0 or self.limit < 0 or self.shift_after < 0 or self.review_delay < 0:
            raise ConfigError("duration, limit, shift-after and review-delay must not be negative")
        if not 0.0 <= self.review_share <= 1.0:
            raise ConfigError(f"review-share: {self.review_share} is not in [0, 1]")
        if self.review_via not in REVIEW_VIAS:
            raise ConfigError(f"review-via: {self.review_via!r} is not one of {', '.join(REVIEW_VIAS)}")
        if bool(self.shift_to) != bool(self.shift_after):
            raise ConfigError("shift-to and shift-after go together")


def _items(
    uri: str, cfg: DataConfig, phase: PhaseStats, cycle: bool, shuffle: int, rng: random.Random
) -> Iterator[SourceItem]:
    """The source's readable items, streamed through a shuffle buffer of ``shuffle`` items (sources
    are often sorted by class); again from the start when ``cycle`` (the run has another bound)."""
    while True:
        found = 0
        buffer: list[SourceItem] = []
        for item in open_source(uri, cfg):
            if item.error is not None:
                phase.skipped += 1
                continue
            found += 1
            if len(buffer) < shuffle:
                buffer.append(item)
                continue
            if buffer:  # swap the new item with a random buffered one
                i = rng.randrange(len(buffer))
                item, buffer[i] = buffer[i], item
            yield item
        rng.shuffle(buffer)
        yield from buffer
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
        review: Callable[[ServedModel], ReviewPath] | None,
        data_cfg: DataConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        plan.validate()
        self.plan, self.store, self.review, self.clock = plan, store, review, clock
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
        served = _served_model(client, plan.model or client.default_model())
        model = served.name
        matcher = LabelMatcher(served.labels, self.data_cfg.synonyms)
        path = self.review(served) if self.review is not None and plan.review_via != "none" else None
        reviewer = Reviewer(
            self.store, path, plan.review_share, plan.review_delay, served, plan.seed, self.clock
        )
        self._t0 = self.clock()
        try:
            with ThreadPoolExecutor(plan.concurrency, thread_name_prefix="aidetect-sim") as pool:
                for n, (phase, batch) in enumerate(self._batches(matcher)):
                    pause = self._t0 + n / plan.rate - self.clock()
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
            "model_version": served.version,
            "review_via": plan.review_via,
            "review": path.summary() if path is not None else {},
            "seconds": round(self.clock() - self._t0, 2),
            **{
                k: sum(getattr(p, k) for p in self.phases)
                for k in ("sent", "ok", "errors", "kept", "labelled")
            },
            "phases": [p.summary() for p in self.phases],
        }

    def _batches(self, matcher: LabelMatcher) -> Iterator[tuple[PhaseStats, list[tuple[bytes, str]]]]:
        """Batches of (image bytes, true label) in the plan's order, until a bound is reached. The run's
        clock starts once the first image is read (opening a large source takes a while)."""
        plan = self.plan
        bounded = bool(plan.duration or plan.limit)
        rng = random.Random(plan.seed)
        sources = [_items(p.source, self.data_cfg, p, bounded or i < len(self.phases) - 1, plan.shuffle, rng)
                   for i, p in enumerate(self.phases)]  # fmt: skip
        first = next(sources[0], None)
        if first is None:
            return
        self._t0 = self.clock()
        sources[0] = itertools.chain([first], sources[0])
        sent = 0
        current = 0
        batch: list[tuple[bytes, str]] = []
        while True:
            elapsed = self.clock() - self._t0
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


def _served_model(client: V2Client, model: str) -> ServedModel:
    """Name, version, labels and real label from the model's V2 metadata."""
    try:
        r = client.http.get(f"/v2/models/{model}")
        meta = r.json() if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as exc:
        raise ServiceUnavailableError(f"cannot read the metadata of {model}: {exc}") from None
    params = (meta or {}).get("parameters") or {}
    if not params.get("labels"):
        raise ServiceUnavailableError(f"{client.url}: model {model} states no labels in its metadata")
    labels = tuple(str(x) for x in params["labels"])
    version = str(params.get("model_version") or ((meta or {}).get("versions") or [""])[0])
    return ServedModel(model, version, labels, str(params.get("real_label") or labels[0]))
