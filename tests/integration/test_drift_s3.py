"""The drift check with everything in an S3-compatible store (a real moto_server): reference profile,
inference log, verdicts and reports, retrain state."""

from __future__ import annotations

import io
import json
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from aidetect import storage
from aidetect.data.features import FEATURE_COLUMNS
from aidetect.flows.monitoring import retrainer
from aidetect.monitoring.check import read_latest, run_check
from aidetect.monitoring.config import DriftConfig, RetrainConfig
from aidetect.monitoring.reference import Profile, read_reference, write_reference
from aidetect.monitoring.retrain import load_launches
from aidetect.refs import ModelRef


def _frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(0.5 + shift, 0.1, (n, len(FEATURE_COLUMNS))), columns=FEATURE_COLUMNS)
    df["probability_fake"] = rng.beta(2, 2, n)
    return df


def test_drift_check_reads_and_writes_s3(s3_env: str, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AIDETECT_FEEDBACK__GROW__BEFORE_RETRAIN", "false")  # the launcher as configured
    storage.s3_client().create_bucket(Bucket="drift")
    ref = _frame(400, seed=0)
    profile = Profile("det", "5", "ds1", "val", len(ref), list(FEATURE_COLUMNS), ["probability_fake"], [])
    write_reference(ref, profile, "s3://drift/references/det/5")
    back, meta = read_reference("s3://drift/references/det/5")
    assert len(back) == 400 and meta.model_version == "5"

    now = datetime.now(UTC)
    window = _frame(300, seed=1, shift=0.3)
    window["ts"] = [now - timedelta(minutes=10)] * len(window)
    window["model_name"], window["model_version"], window["label"] = "det", "5", "FAKE"
    for i in range(3):  # several files, as the server flushes them
        part = window.iloc[i * 100 : (i + 1) * 100]
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), buf)
        storage.write_bytes(f"s3://drift/log/det/date={now:%Y-%m-%d}/part-{i}.parquet", buf.getvalue())

    marker = tmp_path / "launched"
    cfg = DriftConfig(
        min_rows=100,
        min_reference_rows=100,
        log_uri="s3://drift/log",
        reports_uri="s3://drift/reports",
        retrain=RetrainConfig(
            command=[sys.executable, "-c", f"open({str(marker)!r}, 'w').write('{{model_version}}')"],
            state_uri="s3://drift/state/retrain.json",
        ),
    )
    retrain = retrainer("det", "", "", retrain=cfg.retrain)
    verdict = run_check(
        ModelRef("det", "5"), cfg, reference_uri="s3://drift/references/det/5", now=now, retrain=retrain
    )
    assert verdict["drift_detected"] and verdict["rows_current"] == 300
    assert verdict["report_uri"].startswith("s3://drift/reports/det/5/")
    assert storage.read_bytes(verdict["report_uri"]).lstrip().startswith(b"<!DOCTYPE html>")
    assert json.loads(storage.read_bytes(verdict["verdict_uri"]))["drift_detected"] is True
    assert read_latest(cfg, "det")["verdict_uri"] == verdict["verdict_uri"]
    assert verdict["retrain"]["action"] == "launched" and marker.read_text() == "5"
    (launch,) = load_launches("s3://drift/state/retrain.json")
    assert launch.verdict_uri == verdict["verdict_uri"]


def test_the_cooldown_outlives_the_pod_when_the_state_is_in_s3(s3_env: str, tmp_path, monkeypatch) -> None:
    """Two monitoring-pipeline runs are two trigger-retrain pods, each with its own empty disk
    (AIDETECT_HOME): the launch record in object storage still holds the second run back."""
    from aidetect.flows.monitoring import trigger_retrain
    from tests.helpers.kfp_api import fake_kfp_api

    storage.s3_client().create_bucket(Bucket="loop")
    state = "s3://loop/monitoring/retrain-state.json"
    verdict = {"model_name": "det", "model_version": "5", "dataset_version": "ds1",
               "reasons": ["drift: jpeg_quality drifted"], "verdict_uri": "s3://loop/v.json"}  # fmt: skip
    outcomes = []
    with fake_kfp_api() as api:
        for pod in ("pod-1", "pod-2"):
            monkeypatch.setenv("AIDETECT_HOME", str(tmp_path / pod))
            out = trigger_retrain(
                verdict, "det", api.url, "s3://loop/data", {}, grow_first=False, state_uri=state
            )
            outcomes.append(out)
        runs = api.received("POST", "/apis/v2beta1/runs")
    assert [o["action"] for o in outcomes] == ["launched", "skipped"], outcomes
    assert "cooldown" in outcomes[1]["reason"] and len(runs) == 1
    (launch,) = load_launches(state)
    assert launch.model_name == "det" and launch.status == "succeeded"
    assert not list(tmp_path.glob("pod-*/monitoring/retrain-state.json")), "nothing kept on the pod's disk"
