"""The simulator's reviewer: a person who, some time after an image was served, looks at the kept ones
and labels a share of them with the truth, through one of the platform's review paths.

The reviewer only sees what the platform kept: it looks each answered image up in the image store by
sha256 (:class:`~aidetect.feedback.capture.ImageStore`), so sampling, drops and retention shape what
gets labelled exactly as they would for people. Paths:

- ``import`` (:class:`ImportPath`): each batch of decisions is a JSONL label file taken by the feedback
  import (``aidetect feedback import``), as a team with its own labelling tool hands labels over.
- ``label-studio`` (:class:`LabelStudioPath`): the platform's ``review push`` makes the tasks (run
  here, as its CronWorkflow would, when a reviewed image has no task yet); the simulated person submits
  the true label on each task over Label Studio's REST API, as the labelling UI does; at the end the
  platform's ``review pull`` brings the annotations into the label log.
"""

from __future__ import annotations

import heapq
import json
import random
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aidetect.feedback.capture import ImageStore
from aidetect.feedback.config import FeedbackConfig
from aidetect.feedback.labels import LabelLog, LabelRecord

SOURCE = "simulated-reviewer"
MAX_WATCHED = 100_000  # images waiting for the reviewer's delay
RECHECK_S = 2.0  # an image not yet in the store at its due time is looked up once more this much later
FLUSH_RECORDS, FLUSH_SECONDS = 200, 2.0  # decisions go out in batches
SETTLE_S = 15.0  # label-studio: how long the end of a run waits for the last kept images to get tasks


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
    labelled: int = 0  # decisions the review path took
    unwatched: int = 0  # answered but never looked up (the reviewer's bound)

    def summary(self) -> dict[str, Any]:
        out = asdict(self)
        out["accuracy"] = round(self.correct / self.ok, 4) if self.ok else None
        return out


@dataclass(frozen=True)
class ServedModel:
    """What the server's metadata says about the model under test."""

    name: str
    version: str
    labels: tuple[str, ...]
    real_label: str


class ReviewPath(Protocol):
    """Where the simulated reviewer's decisions go."""

    def submit(self, records: list[LabelRecord]) -> list[LabelRecord]:
        """Record what can be recorded now; the records taken."""
        ...

    def finish(self) -> list[LabelRecord]:
        """The end of the run: record what is still waiting; the records taken."""
        ...

    def summary(self) -> dict[str, Any]: ...


class ImportPath:
    """Decisions as label files through the feedback import (``aidetect feedback import``)."""

    def __init__(self, model: ServedModel, log: LabelLog, store: ImageStore) -> None:
        self.model, self.log, self.store = model, log, store
        self.files = 0

    def submit(self, records: list[LabelRecord]) -> list[LabelRecord]:
        from aidetect.feedback.imports import import_labels

        with tempfile.TemporaryDirectory(prefix="aidetect-sim-") as tmp:
            path = Path(tmp, "reviewed.jsonl")
            path.write_text("".join(json.dumps(asdict(r)) + "\n" for r in records), encoding="utf-8")
            import_labels(path, self.log, store=self.store, labels=self.model.labels, source=SOURCE)
        self.files += 1
        return records

    def finish(self) -> list[LabelRecord]:
        return []

    def summary(self) -> dict[str, Any]:
        return {"import_files": self.files}


class LabelStudioPath:
    """A person annotating in Label Studio (see the module doc for who pushes and pulls)."""

    def __init__(
        self,
        model: ServedModel,
        cfg: FeedbackConfig,
        log: LabelLog,
        store: ImageStore,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from aidetect.feedback import label_studio

        self.ls = label_studio
        self.model, self.cfg, self.log, self.store, self.clock = model, cfg.review, log, store, clock
        self.client = label_studio.client_from_config(cfg.review)
        self.tasks: dict[str, int] = {}  # sha256 -> task id in the review project
        self.waiting: list[LabelRecord] = []  # decided, but the image has no task yet
        self.pushed = self.annotated = self.pulled = 0

    def _refresh(self) -> None:
        """Run the platform's push, then learn which image each task shows."""
        m = self.model
        report = self.ls.push(self.cfg, self.client, self.store, m.name, m.labels, m.real_label)
        self.pushed += report.pushed
        self.tasks = {self.ls._sha_of(t): int(t["id"]) for t in self.client.tasks(report.project_id)}

    def submit(self, records: list[LabelRecord]) -> list[LabelRecord]:
        todo, self.waiting = self.waiting + records, []
        if any(r.sha256 not in self.tasks for r in todo):
            self._refresh()
        done = []
        for r in todo:
            task = self.tasks.get(r.sha256)
            if task is None:
                self.waiting.append(r)
                continue
            choice = {"choices": [r.label]}
            result = [
                {
                    "from_name": self.ls.FROM_NAME,
                    "to_name": self.ls.TO_NAME,
                    "type": "choices",
                    "value": choice,
                }
            ]
            self.client.call(
                "POST",
                f"/api/tasks/{task}/annotations/",
                json={"result": result, "was_cancelled": False, "lead_time": 3.0},
            )
            done.append(r)
        self.annotated += len(done)
        return done

    def finish(self) -> list[LabelRecord]:
        """Annotate the last images once they have tasks (the server's inference log must flush their
        rows for push to see them), then pull."""
        deadline, done = self.clock() + SETTLE_S, []
        while self.waiting and self.clock() < deadline:
            time.sleep(1.0)
            done += self.submit([])
        self.pulled = self.ls.pull(self.cfg, self.client, self.log, self.model.labels).added
        self.client.close()
        return done

    def summary(self) -> dict[str, Any]:
        return {
            "pushed": self.pushed,
            "annotated": self.annotated,
            "pulled": self.pulled,
            "no_task": len(self.waiting),
        }


def review_path(
    via: str, cfg: FeedbackConfig, store: ImageStore, labels_root: str = ""
) -> Callable[[ServedModel], ReviewPath] | None:
    """The path named ``via`` (``import``, ``label-studio``, ``none``), built once the model is known."""
    log = LabelLog(labels_root or cfg.labels.root)
    if via == "import":
        return lambda model: ImportPath(model, log, store)
    if via == "label-studio":
        return lambda model: LabelStudioPath(model, cfg, log, store)
    return None


@dataclass(order=True)
class _Watched:
    due: float
    sha256: str = field(compare=False)
    label: str = field(compare=False)
    phase: PhaseStats = field(compare=False)
    rechecked: bool = field(default=False, compare=False)


class Reviewer:
    """A thread that looks up answered images after the delay and labels a share of the kept ones."""

    def __init__(
        self,
        store: ImageStore,
        path: ReviewPath | None,
        share: float,
        delay: float,
        model: ServedModel,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.path, self.share, self.delay, self.model = store, path, share, delay, model
        self.rng = random.Random(seed)
        self.clock = clock
        self._heap: list[_Watched] = []
        self._cond = threading.Condition()
        self._closing = False
        self._phase_of: dict[str, PhaseStats] = {}  # images decided (each once)
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
        """Review everything still waiting (after its delay), submit the last decisions, stop."""
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
                    ready = self._heap and self._heap[0].due <= self.clock()
                    item = heapq.heappop(self._heap) if ready else None
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
            if self.path is not None:
                self._taken(self.path.finish())
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
        if self.path is None or item.sha256 in self._phase_of or self.rng.random() >= self.share:
            return
        self._phase_of[item.sha256] = item.phase
        self._records.append(
            LabelRecord(
                sha256=item.sha256,
                label=item.label,
                source=SOURCE,
                author="simulator",
                model_name=self.model.name,
                model_version=self.model.version,
                note=f"phase:{item.phase.name}",
            )
        )

    def _flush(self) -> None:
        self._last_flush = self.clock()
        if self._records and self.path is not None:
            records, self._records = self._records, []
            self._taken(self.path.submit(records))

    def _taken(self, records: list[LabelRecord]) -> None:
        for r in records:
            self._phase_of[r.sha256].labelled += 1
