"""Helpers for the drift tests and benchmarks: CIFAKE samples, re-encoding, writing inference logs."""

from __future__ import annotations

import io
import random
import time
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from PIL import Image

from aidetect.monitoring.check import run_check
from aidetect.monitoring.config import DriftConfig
from aidetect.monitoring.reference import Profile, Scorer, write_reference
from aidetect.refs import ModelRef
from aidetect.serving.inference_log import InferenceLog, LoggedBatch


def cifake_names(zip_path: Path, seed: int = 0) -> list[str]:
    """Every CIFAKE image name in the zip, in a seeded random order."""
    with zipfile.ZipFile(zip_path) as z:
        names = sorted(n for n in z.namelist() if n.lower().endswith(".jpg"))
    random.Random(seed).shuffle(names)
    return names


def read_members(zip_path: Path, names: Sequence[str]) -> list[bytes]:
    with zipfile.ZipFile(zip_path) as z:
        return [z.read(n) for n in names]


def extract_tree(zip_path: Path, names: Sequence[str], out: Path) -> Path:
    """Write ``names`` into ``out/REAL`` and ``out/FAKE`` (a folder source for ``ingest``)."""
    with zipfile.ZipFile(zip_path) as z:
        for n in names:
            label = "FAKE" if "/FAKE/" in n else "REAL"
            target = out / label / Path(n).name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(z.read(n))
    return out


def reencode(data: bytes, quality: int) -> bytes:
    """The image re-saved as JPEG at ``quality``."""
    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def dev512_images(parquet: Path, n: int | None = None) -> list[bytes]:
    df = pd.read_parquet(parquet)
    blobs = [row["bytes"] for row in df["image"]]
    return blobs[:n] if n else blobs


def write_log(
    root: Path | str,
    model_name: str,
    model_version: str,
    blobs: Sequence[bytes],
    scorer: Scorer,
    ts: datetime | None = None,
    batch: int = 32,
) -> int:
    """Score ``blobs`` and write them through the serving InferenceLog, as the server would.

    The log's queue is bounded in bytes (large images fill it fast), so a refused batch waits for the
    writer to drain it instead of being dropped: every row of a scenario must land."""
    log = InferenceLog(str(root), model_name, model_version, scorer.rule, flush_rows=100_000)
    refused = 0
    for i in range(0, len(blobs), batch):
        chunk = blobs[i : i + batch]
        images = [Image.open(io.BytesIO(b)) for b in chunk]
        for img in images:
            img.load()
        probs = scorer.predict(chunk)
        item = LoggedBatch(ts or datetime.now(UTC), images, list(chunk), probs)
        deadline = time.monotonic() + 120
        while not log.submit(item):
            assert time.monotonic() < deadline, "the inference log never drained"
            refused += len(chunk)  # counted as dropped by the log, then retried here
            time.sleep(0.05)
    log.close()
    assert log.dropped == refused, f"{log.dropped - refused} rows dropped"
    return log.written_rows


def logged_drift_check(
    tmp_path: Path,
    model: str,
    version: str,
    dataset_version: str,
    reference: pd.DataFrame,
    window: pd.DataFrame,
    label: str,
    cfg: DriftConfig,
) -> dict:
    """A real drift check of ``model`` ``version``: ``reference`` as its profile (every column but
    ``probability_fake`` a feature) and ``window`` logged a minute ago under ``cfg.log_uri``."""
    features = [c for c in reference.columns if c != "probability_fake"]
    profile = Profile(
        model, version, dataset_version, "val", len(reference), features, ["probability_fake"], []
    )
    write_reference(reference, profile, str(tmp_path / "reference"))
    now = datetime.now(UTC)
    window = window.assign(
        ts=now - timedelta(minutes=1), model_name=model, model_version=version, label=label
    )
    day = Path(cfg.log_uri) / model / f"date={now:%Y-%m-%d}"
    day.mkdir(parents=True)
    window.to_parquet(day / "part-0.parquet")
    return run_check(ModelRef(model, version), cfg, reference_uri=str(tmp_path / "reference"), now=now)
