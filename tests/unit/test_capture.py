"""Keeping what was seen: the content-addressed image store (idempotent put, retention, size cap) and the
capture's sampling, bounds and failure handling, in-process and through the predictor (no server)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from aidetect.errors import ConfigError, DataError
from aidetect.feedback.capture import QUEUE_FULL, STORE_ERROR, Capture, ImageStore
from aidetect.feedback.config import CaptureConfig
from tests.helpers.serving import solid, tiny_bundle


class Counted:
    """A CaptureMetrics that remembers what it was told."""

    def __init__(self) -> None:
        self.kept: list[str] = []
        self.drops: list[tuple[str, str]] = []

    def captured(self, model: str) -> None:
        self.kept.append(model)

    def dropped(self, model: str, reason: str) -> None:
        self.drops.append((model, reason))


def _cfg(tmp_path: Path, **kw: object) -> CaptureConfig:
    cfg = CaptureConfig(store_uri=str(tmp_path / "store"), **kw)  # type: ignore[arg-type]
    cfg.validate()
    return cfg


def _age(path: str, days: float, now: datetime) -> None:
    t = (now - timedelta(days=days)).timestamp()
    os.utime(path, (t, t))


def test_put_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = ImageStore(str(tmp_path / "s"))
    sha = store.put(b"image-a")
    assert sha == hashlib.sha256(b"image-a").hexdigest()
    assert store.uri_of(sha) == str(tmp_path / "s" / sha[:2] / sha)
    assert store.put(b"image-a") == sha
    assert [p.name for p in (tmp_path / "s").rglob("*") if p.is_file()] == [sha]  # one object, no temp
    assert store.has(sha) and store.get(sha) == b"image-a"
    other = hashlib.sha256(b"never").hexdigest()
    assert not store.has(other)
    with pytest.raises(DataError, match="no image"):
        store.get(other)
    with pytest.raises(DataError, match="not a sha256"):
        store.uri_of("../../etc/passwd")
    with pytest.raises(DataError, match="empty"):
        store.put(b"")


def test_prune_applies_retention_then_the_size_cap_oldest_first(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    store = ImageStore(str(tmp_path / "s"), retention=timedelta(days=7), max_bytes=250)
    shas = [store.put(bytes([i]) * 100) for i in range(4)]  # 400 bytes
    for sha, days in zip(shas, (10, 3, 2, 1), strict=True):
        _age(store.uri_of(sha), days, now)
    crashed = tmp_path / "s" / "ab" / ".x.tmp"
    crashed.parent.mkdir(parents=True, exist_ok=True)
    crashed.write_bytes(b"partial")
    _age(str(crashed), 1, now)
    report = store.prune(now)
    # the 10-day-old one is past retention; then 300 bytes > 250: the oldest of the rest goes too
    assert (report.removed, report.removed_bytes, report.kept, report.kept_bytes) == (2, 200, 2, 200)
    assert [store.has(s) for s in shas] == [False, False, True, True]
    assert not crashed.exists()
    again = store.prune(now)  # nothing more to do
    assert (again.removed, again.kept) == (0, 2)


def test_putting_an_image_again_restarts_its_retention(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    store = ImageStore(str(tmp_path / "s"), retention=timedelta(days=7))
    sha = store.put(b"seen-twice")
    _age(store.uri_of(sha), 30, now)
    store.put(b"seen-twice")
    assert store.prune(now).removed == 0 and store.has(sha)


def test_sampling_keeps_the_uncertain_band_and_the_model_rate(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, sample_rate=0.0, uncertain_low=0.4, uncertain_high=0.6, model_rates={"busy": 0.3})
    quiet = Capture(cfg, "quiet", rng=random.Random(0))
    busy = Capture(cfg, "busy", rng=random.Random(0))
    try:
        assert [quiet.wants(s) for s in (0.39, 0.4, 0.5, 0.6, 0.61, None)] == [
            False,
            True,
            True,
            True,
            False,
            False,
        ]
        share = sum(busy.wants(0.99) for _ in range(4000)) / 4000
        assert 0.27 < share < 0.33, share  # the per-model rate, not the default 0
        assert all(busy.wants(0.5) for _ in range(100))  # the band keeps regardless of the rate
    finally:
        quiet.close()
        busy.close()


def test_kept_images_land_in_the_store_and_are_counted(tmp_path: Path) -> None:
    counted = Counted()
    cap = Capture(_cfg(tmp_path, sample_rate=1.0), "m", counted)
    images = [f"img-{i}".encode() for i in range(5)]
    shas = [hashlib.sha256(b).hexdigest() for b in images]
    assert all(cap.offer(s, b, 0.99) for s, b in zip(shas, images, strict=True))
    assert cap.offer(shas[0], images[0], 0.99)  # the same bytes again: kept once
    cap.close()
    assert all(cap.store.get(s) == b for s, b in zip(shas, images, strict=True))
    assert cap.kept == 5 and counted.kept == ["m"] * 5 and not counted.drops
    assert not cap.offer(shas[0], images[0], 0.5)  # closed: nothing more is taken


def test_over_the_queue_bound_is_dropped_and_counted_never_blocks(tmp_path: Path) -> None:
    counted = Counted()
    cap = Capture(_cfg(tmp_path, sample_rate=1.0, max_queue_bytes=1000), "m", counted)
    big = b"x" * 1001
    assert not cap.offer(hashlib.sha256(big).hexdigest(), big, 0.5)
    cap.close()
    assert counted.drops == [("m", QUEUE_FULL)] and cap.kept == 0


def test_an_unreachable_store_drops_and_counts(s3_unreachable: str, tmp_path: Path) -> None:
    counted = Counted()
    cfg = CaptureConfig(store_uri="s3://nowhere/captured", sample_rate=1.0)
    cap = Capture(cfg, "m", counted)
    images = [b"a", b"b", b"c"]
    assert all(cap.offer(hashlib.sha256(b).hexdigest(), b, 0.5) for b in images)  # taken, never raises
    cap.close()
    assert cap.kept == 0 and counted.drops == [("m", STORE_ERROR)] * 3


def test_bad_capture_settings_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"capture\.retention"):
        CaptureConfig(retention="forever").validate()
    with pytest.raises(ConfigError, match=r"capture\.sample_rate"):
        CaptureConfig(model_rates={"m": 1.5}).validate()


def test_s3_store_on_a_real_s3_server(s3_env: str) -> None:
    import boto3

    boto3.client("s3", endpoint_url=s3_env).create_bucket(Bucket="kept")
    store = ImageStore("s3://kept/captured", retention=timedelta(days=1), max_bytes=10)
    sha = store.put(b"0123456789")
    assert store.uri_of(sha) == f"s3://kept/captured/{sha[:2]}/{sha}"
    assert store.put(b"0123456789") == sha and store.get(sha) == b"0123456789" and store.has(sha)
    newer = store.put(b"abcdefghij")
    report = store.prune()  # 20 bytes over a cap of 10: one goes
    assert (report.removed, report.kept, report.kept_bytes) == (1, 1, 10)
    assert store.has(sha) != store.has(newer)
    report = store.prune(datetime.now(UTC) + timedelta(days=2))  # past retention
    assert report.removed == 1 and not store.has(sha) and not store.has(newer)
    cap = Capture(CaptureConfig(store_uri="s3://kept/captured", sample_rate=1.0), "m")
    assert cap.offer(sha, b"0123456789", None)
    cap.close()
    assert store.get(sha) == b"0123456789" and cap.kept == 1


# -- through the predictor ---------------------------------------------------------------------------


def _request(images: list[bytes]):
    from aidetect.serving.kserve_compat import InferInput, InferRequest

    inp = InferInput("image", [len(images)], "BYTES")
    inp.set_data_from_numpy(np.array(images, dtype=np.object_), binary_data=True)
    return InferRequest("tiny", [inp], request_id="r1")


def test_the_predictor_keeps_uncertain_images_and_logs_sha256_kept_and_track(tmp_path: Path) -> None:
    from aidetect.serving.bundle import load_bundle
    from aidetect.serving.config import ServingConfig
    from aidetect.serving.inference_log import InferenceLog
    from aidetect.serving.kserve_compat import InferInput, InferRequest
    from aidetect.serving.predictor import AidetectPredictor

    bundle = load_bundle(tiny_bundle(tmp_path / "b"))
    log = InferenceLog(str(tmp_path / "log"), "tiny", "3", bundle.spec.decision, track="canary")
    # red scores 0.27 (outside), blue 0.73 (inside the band): only blue is kept
    cap = Capture(_cfg(tmp_path, sample_rate=0.0, uncertain_low=0.6, uncertain_high=0.8), "tiny", Counted())
    p = AidetectPredictor(bundle, ServingConfig(track="canary"), inference_log=log, capture=cap)
    p.load()
    red, blue = solid((255, 0, 0)), solid((0, 0, 255))
    res, _ = asyncio.run(p(_request([red, blue])))
    assert [s.decode() for s in res.outputs[1].data] == ["REAL", "FAKE"]
    pixels = InferInput("pixels", [1, 8, 8, 3], "UINT8")
    pixels.set_data_from_numpy(np.zeros((1, 8, 8, 3), np.uint8))
    asyncio.run(p(InferRequest("tiny", [pixels], request_id="r2")))  # no bytes: no hash, nothing kept
    p.stop()
    rows = pq.read_table(next((tmp_path / "log").rglob("*.parquet"))).to_pylist()
    sha_red, sha_blue = (hashlib.sha256(b).hexdigest() for b in (red, blue))
    assert [(r["sha256"], r["kept"], r["track"]) for r in rows] == [
        (sha_red, False, "canary"),
        (sha_blue, True, "canary"),
        ("", False, "canary"),
    ]
    assert cap.store.get(sha_blue) == blue and not cap.store.has(sha_red)


def test_a_failing_store_never_fails_the_request(s3_unreachable: str, tmp_path: Path) -> None:
    from aidetect.serving import metrics
    from aidetect.serving.bundle import load_bundle
    from aidetect.serving.predictor import AidetectPredictor

    cfg = CaptureConfig(store_uri="s3://nowhere/captured", sample_rate=1.0)
    cap = Capture(cfg, "tiny-unreachable", metrics.CaptureCounters())
    p = AidetectPredictor(load_bundle(tiny_bundle(tmp_path / "b")), capture=cap)
    p.load()
    res, _ = asyncio.run(p(_request([solid((0, 0, 255))])))
    assert res.outputs[0].data.shape == (1, 2)
    p.stop()
    dropped = metrics.CAPTURE_DROPPED.labels("tiny-unreachable", STORE_ERROR)._value.get()
    assert dropped == 1 and metrics.CAPTURED.labels("tiny-unreachable")._value.get() == 0


def test_a_rest_worker_gets_its_own_writer_with_the_same_settings(tmp_path: Path) -> None:
    import pickle

    from aidetect.serving.metrics import CaptureCounters

    cap = Capture(_cfg(tmp_path, sample_rate=1.0), "m", CaptureCounters())
    copy = pickle.loads(pickle.dumps(cap))  # what a spawned REST worker receives
    cap.close()
    assert copy.offer(hashlib.sha256(b"w").hexdigest(), b"w", None)
    copy.close()
    assert copy.kept == 1 and copy.store.get(hashlib.sha256(b"w").hexdigest()) == b"w"
