"""A constructed inference log and label log with known live metrics (unit and integration tests)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from aidetect.feedback.labels import LabelLog, LabelRecord

MODEL = "detector"
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def sha(i: int) -> str:
    return hashlib.sha256(f"image-{i}".encode()).hexdigest()


def row(i: int, p_fake: float, version: str, track: str, ts: datetime, image: str | None = None) -> dict:
    return {
        "ts": ts,
        "model_name": MODEL,
        "model_version": version,
        "label": "FAKE" if p_fake >= 0.5 else "REAL",
        "probability_fake": p_fake,
        "p_FAKE": p_fake,
        "p_REAL": 1.0 - p_fake,
        "sha256": sha(i) if image is None else image,
        "kept": True,
        "track": track,
    }


def write_log(root: Path, rows: list[dict], name: str = "part") -> None:
    """One parquet file per day under ``<root>/<model>/date=YYYY-MM-DD/`` (the server's layout)."""
    by_day: dict[str, list[dict]] = {}
    for r in rows:
        by_day.setdefault(f"{r['ts']:%Y-%m-%d}", []).append(r)
    for day, part in by_day.items():
        folder = root / MODEL / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(part), folder / f"{name}-{len(list(folder.iterdir()))}.parquet")


@dataclass
class Scenario:
    """v3 on stable: 60 labelled images over two days, TP 24, FN 6, FP 3, TN 27 (accuracy 0.85, fake
    precision 24/27, recall 0.8, ECE 0.2); v4 on canary: 20 labelled, all right; plus rows that must not
    count (unlabelled, no sha256, a re-upload, a label outside the model's classes)."""

    log_root: Path
    labels_root: Path
    accuracy: float = 51 / 60
    precision_fake: float = 24 / 27
    recall_fake: float = 0.8
    recall_real: float = 27 / 30
    ece: float = 0.2

    @property
    def f1(self) -> float:
        p, r = self.precision_fake, self.recall_fake
        return 2 * p * r / (p + r)


def build(tmp: Path, now: datetime = NOW) -> Scenario:
    day1, day2 = now - timedelta(days=2, hours=1), now - timedelta(hours=3)
    rows, labels = [], []
    cases = [("FAKE", 0.9)] * 24 + [("FAKE", 0.2)] * 6 + [("REAL", 0.1)] * 27 + [("REAL", 0.7)] * 3
    for i, (truth, p) in enumerate(cases):
        rows.append(row(i, p, "3", "stable", day1 if i % 2 else day2))
        labels.append(LabelRecord(sha(i), truth, "review-page", model_version="3"))
    rows.append(row(0, 0.9, "3", "stable", day1 - timedelta(hours=1)))  # a re-upload: counted once
    for i in range(100, 120):
        rows.append(row(i, 0.95 if i % 2 else 0.05, "4", "canary", day2))
        labels.append(LabelRecord(sha(i), "FAKE" if i % 2 else "REAL", "label-studio"))
    rows += [row(i, 0.6, "3", "stable", day2) for i in range(200, 210)]  # nobody labelled these
    rows.append(row(300, 0.6, "3", "stable", day2, image=""))  # pixel input: no sha256
    rows.append(row(301, 0.6, "3", "stable", day2))
    labels.append(LabelRecord(sha(301), "CAT", "import"))  # not a class of the model
    rows.append(row(400, 0.9, "3", "stable", now - timedelta(days=30)))  # outside the 7 d window
    labels.append(LabelRecord(sha(400), "REAL", "import"))
    write_log(tmp / "log", rows)
    LabelLog(str(tmp / "labels")).append(labels)
    return Scenario(tmp / "log", tmp / "labels")


def bundle_json(folder: Path, threshold: float = 0.5) -> Path:
    """A folder holding only ``bundle.json`` (the decision rule the quality check reads)."""
    from aidetect.serving.bundle import BUNDLE_FILE, BundleSpec

    spec = BundleSpec(
        model_name=MODEL, model_version="3", labels=["REAL", "FAKE"], positive_label="FAKE", input_size=32,
        mean=[0.5] * 3, std=[0.25] * 3, threshold=threshold, dataset_version="ds-base",
    )  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    (folder / BUNDLE_FILE).write_text(spec.to_json())
    return folder
