"""Uncertain uploads kept for an analyst: image bytes and the result they got, by content hash.

The image goes into the one store of kept images (:class:`aidetect.feedback.capture.ImageStore`, the
capture's ``store_uri``), where review, growth and the loop find it by hash; the queue entry is
``<store>/queue/<sha256>.json`` (written after the image, so a listed item always has its image). An
item leaves the queue once the label log has a label for its hash from after it was queued.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from aidetect import paths, storage
from aidetect.config import load
from aidetect.errors import DataError
from aidetect.feedback.capture import ImageStore
from aidetect.feedback.config import FeedbackConfig
from aidetect.feedback.labels import SHA256, LabelLog


class ReviewQueue:
    def __init__(self, store_uri: str, labels: LabelLog, images: ImageStore | None = None) -> None:
        self.root = storage.join(store_uri or str(paths.home() / "review"), "queue")
        self.labels = labels
        self.images = images or ImageStore.from_config(load(FeedbackConfig, "feedback").capture)

    def add(self, image: bytes, result: dict[str, Any]) -> str:
        """Keep ``image`` with the ``result`` it got; returns its sha256 (idempotent per image)."""
        sha = self.images.put(image)
        item = {"sha256": sha, "queued": dt.datetime.now(dt.UTC).isoformat(), "result": result}
        storage.write_bytes(storage.join(self.root, f"{sha}.json"), json.dumps(item).encode())
        return sha

    def pending(self, limit: int) -> list[dict[str, Any]]:
        """Unlabelled items, newest first."""
        latest = self.labels.latest()
        items = []
        for uri in storage.list_uris(self.root, ".json"):
            item = json.loads(storage.read_bytes(uri))
            label = latest.get(item["sha256"])
            queued = dt.datetime.fromisoformat(item["queued"])
            if label is None or dt.datetime.fromisoformat(label.ts) < queued:
                items.append(item)
        items.sort(key=lambda i: i["queued"], reverse=True)
        return items[:limit]

    def image(self, sha: str) -> bytes:
        if not SHA256.match(sha):
            raise DataError("not a sha256")
        try:  # only what was queued here: the page does not browse the whole store
            if not storage.exists(storage.join(self.root, f"{sha}.json")):
                raise DataError(sha)
            return self.images.get(sha)
        except DataError:
            raise DataError(f"no queued image {sha}") from None
