"""The inference log across a store outage: rows kept for a retry (bounded), the rest dropped and
counted, so rows written + rows dropped always equals predictions (a real folder store that fails)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from aidetect.decision import DecisionSpec
from aidetect.serving import inference_log
from aidetect.serving.inference_log import InferenceLog, LoggedBatch

IMG = Image.fromarray(np.zeros((8, 8, 3), np.uint8))


def _batch(n: int) -> LoggedBatch:
    return LoggedBatch(
        datetime.now(UTC), [IMG] * n, [None] * n, np.tile([[0.9, 0.1]], (n, 1)).astype(np.float32)
    )


def _wait_for(predicate, log: InferenceLog) -> None:
    for _ in range(400):
        if predicate():
            return
        log._thread.join(0.05)
    raise AssertionError("the writer never got there")


def test_a_short_outage_loses_nothing_and_a_long_one_drops_only_what_it_counts(tmp_path: Path) -> None:
    root = tmp_path / "log"
    root.write_text("a file where the folder should be: every write fails")  # the store is down
    log = InferenceLog(
        str(root), "m", "1", DecisionSpec(("REAL", "FAKE"), "REAL"), flush_rows=4, flush_seconds=0.2
    )
    keep = inference_log.RETRY_FLUSHES * 4
    assert log.submit(_batch(4))  # one flush's worth: fails, kept for the retry
    _wait_for(lambda: log._retry_at > 0, log)
    assert log.dropped == 0
    for _ in range(6):  # 24 more rows while down: only the oldest `keep` rows stay buffered
        assert log.submit(_batch(4))
    _wait_for(lambda: log.dropped == 28 - keep, log)
    root.unlink()  # the store is back
    assert log.submit(_batch(2))
    log.close()
    rows = pd.concat([pd.read_parquet(f) for f in sorted((root / "m").rglob("*.parquet"))])
    assert log.written_rows == len(rows) == keep + 2 and log.written_rows + log.dropped == 30
