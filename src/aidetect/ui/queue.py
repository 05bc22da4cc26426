"""Uncertain uploads kept for an analyst: image bytes and the result they got, by content hash.

Layout under the store: ``<store>/queue/<sha256>.img`` then ``<sha256>.json`` (written last, so a
listed item always has its image). An item leaves the queue once the label log has a label for its
hash from after it was queued.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from aidetect import paths, storage
from aidetect.errors import DataError, StorageError
from aidetect.feedback.labels import SHA256, LabelLog


class ReviewQueue:
    def __init__(self, store_uri: str, labels: LabelLog) -> None:
        self.root = storage.join(store_uri or str(paths.home() / "review"), "queue")
        self.labels = labels

    def add(self, image: bytes, result: dict[str, Any]) -> str:
        """Keep ``image`` with the ``result`` it got; returns its sha256 (idempotent per image)."""
        sha = hashlib.sha256(image).hexdigest()
        storage.write_bytes(storage.join(self.root, f"{sha}.img"), image)
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
        try:
            return storage.read_bytes(storage.join(self.root, f"{sha}.img"))
        except StorageError:
            raise DataError(f"no queued image {sha}") from None
