"""Drift building blocks: config, model refs, log windows, the verdict rule, retrain cooldown, metrics."""

from __future__ import annotations

import http.server
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from aidetect.data.features import FEATURE_COLUMNS
from aidetect.errors import ConfigError, DataError, ServiceUnavailableError, StorageError
from aidetect.monitoring import exposition, retrain
from aidetect.monitoring.config import DriftConfig, RetrainConfig, load_drift_config, parse_duration
from aidetect.monitoring.drift import ColumnDrift, InsufficientDataError, compare
from aidetect.monitoring.window import read_window

NOW = datetime(2026, 11, 21, 0, 30, tzinfo=UTC)  # windows cross midnight


def _frame(n: int, seed: int, shift: float = 0.0, with_prediction: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(0.5, 0.1, (n, len(FEATURE_COLUMNS))), columns=FEATURE_COLUMNS)
    df["jpeg_quality"], df["width"], df["height"] = 75.0, 32.0, 32.0
    for col in ("mean_r", "mean_g", "mean_b", "std_r", "std_g", "brightness", "saturation"):
        df[col] += shift
    if with_prediction:
        df["probability_fake"] = rng.beta(2, 2, n)
    return df


# -- config -----------------------------------------------------------------------------------------


def test_durations() -> None:
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("7d") == timedelta(days=7)
    for bad in ("", "1x", "h", "-1h", "0m", "1h junk"):
        with pytest.raises(ConfigError, match="since"):
            parse_duration(bad, "since")


def test_config_names_the_bad_field(tmp_path: Path) -> None:
    bad = tmp_path / "drift.yaml"
    bad.write_text("critical_features: [nope]\n")
    with pytest.raises(ConfigError, match="critical_features"):
        load_drift_config(str(bad))
    bad.write_text("retrain:\n  cooldown: soon\n")
    with pytest.raises(ConfigError, match=r"retrain\.cooldown"):
        load_drift_config(str(bad))
    assert load_drift_config(overrides={"since": "15m"}).since == "15m"


# -- inference-log windows ---------------------------------------------------------------------------


def _write_log(root: Path, model: str, rows: pd.DataFrame) -> None:
    for day, part in rows.groupby(rows["ts"].dt.strftime("%Y-%m-%d")):
        folder = root / model / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        part.to_parquet(folder / f"part-{len(list(folder.iterdir()))}.parquet", index=False)


def _log_rows(n: int, start: datetime, step: timedelta, version: str = "3") -> pd.DataFrame:
    df = _frame(n, seed=1)
    df["ts"] = [start + i * step for i in range(n)]
    df["model_name"], df["model_version"], df["label"] = "det", version, "REAL"
    return df


def test_window_selects_time_range_and_version_across_days(tmp_path: Path) -> None:
    # 100 rows a minute apart ending at NOW, crossing midnight; plus rows of another version
    rows = _log_rows(100, NOW - timedelta(minutes=99), timedelta(minutes=1))
    _write_log(tmp_path, "det", rows)
    _write_log(tmp_path, "det", _log_rows(10, NOW - timedelta(minutes=5), timedelta(seconds=1), "4"))
    got = read_window(str(tmp_path), "det", since=timedelta(hours=2), until=NOW, model_version="3")
    assert len(got) == 100 and set(got["model_version"]) == {"3"}
    recent = read_window(str(tmp_path), "det", since=timedelta(minutes=30), until=NOW, model_version="3")
    assert len(recent) == 30  # (NOW-30m, NOW]
    both = read_window(str(tmp_path), "det", since=timedelta(minutes=30), until=NOW)
    assert len(both) == 40


def test_window_with_missing_columns_names_them(tmp_path: Path) -> None:
    rows = _log_rows(5, NOW - timedelta(minutes=5), timedelta(seconds=1)).drop(columns=["saturation"])
    _write_log(tmp_path, "det", rows)
    with pytest.raises(DataError, match=r"lacks column.*saturation"):
        read_window(str(tmp_path), "det", since=timedelta(hours=1), until=NOW, columns=FEATURE_COLUMNS)


def test_window_from_unreachable_stores(tmp_path: Path, s3_unreachable: str) -> None:
    with pytest.raises(StorageError, match="inference log root not found"):
        read_window(str(tmp_path / "nowhere"), "det", since=timedelta(hours=1))
    with pytest.raises(ServiceUnavailableError, match="unreachable"):
        read_window("s3://logs/inference", "det", since=timedelta(hours=1))


# -- the verdict rule --------------------------------------------------------------------------------


def test_same_distribution_is_not_drift_and_a_shift_is() -> None:
    cfg = DriftConfig(min_rows=100, min_reference_rows=100)
    reference = _frame(1000, seed=0)
    same, _ = compare(reference, _frame(400, seed=1), cfg)
    assert not same.drift_detected and same.reasons == [] and same.rows_current == 400
    shifted, _ = compare(reference, _frame(400, seed=2, shift=0.05), cfg)
    assert shifted.data_drift and shifted.drift_share >= 0.5 and not shifted.critical_drifted
    assert shifted.reasons and "features drifted" in shifted.reasons[0]


def test_a_critical_feature_alone_is_drift_and_predictions_are_tested() -> None:
    cfg = DriftConfig(min_rows=100, min_reference_rows=100)
    reference = _frame(1000, seed=0)
    current = _frame(400, seed=3)
    current["jpeg_quality"] = 30.0
    current["probability_fake"] = np.clip(current["probability_fake"] + 0.3, 0, 1)
    result, _ = compare(reference, current, cfg)
    assert result.critical_drifted == ["jpeg_quality"] and result.drift_share < 0.5
    assert result.data_drift and result.prediction_drift
    assert result.prediction is not None and result.prediction.strength > 1.0


def test_features_only_reference_skips_prediction_drift() -> None:
    cfg = DriftConfig(min_rows=100, min_reference_rows=100)
    result, _ = compare(_frame(500, 0, with_prediction=False), _frame(300, 1), cfg)
    assert result.prediction is None and not result.prediction_drift


def test_missing_data_never_raises_an_alarm() -> None:
    cfg = DriftConfig(min_rows=200, min_reference_rows=100)
    reference = _frame(500, seed=0)
    with pytest.raises(InsufficientDataError, match="199 usable rows") as info:
        compare(reference, _frame(199, seed=1, shift=1.0), cfg)
    assert info.value.exit_code == 3
    with pytest.raises(InsufficientDataError, match="0 usable rows"):
        compare(reference, reference.iloc[:0], cfg)
    failed = _frame(300, seed=1, shift=1.0)
    failed.loc[:150, FEATURE_COLUMNS] = np.nan  # rows whose feature extraction failed are not evidence
    with pytest.raises(InsufficientDataError, match="149 usable rows"):
        compare(reference, failed, cfg)
    with pytest.raises(DataError, match=r"lacks column.*brightness"):
        compare(reference, _frame(300, seed=1).drop(columns=["brightness"]), cfg)
    with pytest.raises(DataError, match="min_reference_rows"):
        compare(reference.iloc[:50], _frame(300, seed=1), cfg)


def test_unknown_stat_test_is_a_config_error() -> None:
    cfg = DriftConfig(min_rows=10, min_reference_rows=10, method="no-such-test")
    with pytest.raises(ConfigError, match="method"):
        compare(_frame(50, 0), _frame(50, 1), cfg)


def test_strength_is_one_at_the_threshold_for_p_values_and_distances() -> None:
    assert ColumnDrift("a", "ks", 0.01, 0.01, True).strength == pytest.approx(1.0)
    assert ColumnDrift("a", "ks", 0.0001, 0.01, True).strength == pytest.approx(2.0)
    assert ColumnDrift("a", "ks", 0.5, 0.01, False).strength < 1.0
    assert ColumnDrift("a", "wasserstein", 0.3, 0.1, True).strength == pytest.approx(3.0)
    assert ColumnDrift("a", "wasserstein", 0.05, 0.1, False).strength == pytest.approx(0.5)


# -- retraining --------------------------------------------------------------------------------------


def _retrain_cfg(tmp_path: Path, code: str = "pass", **kw: object) -> RetrainConfig:
    marker = tmp_path / "launched.txt"
    script = f"open({str(marker)!r}, 'a').write('{{model_version}}\\n'); {code}"
    return RetrainConfig(
        command=[sys.executable, "-c", script], cooldown="1d", state_uri=str(tmp_path / "state.json"), **kw
    )


def _launch(cfg: RetrainConfig, tmp_path: Path, at: datetime, version: str = "3") -> retrain.Decision:
    return retrain.maybe_retrain(
        cfg,
        model_name="det",
        model_version=version,
        dataset_version="ds1",
        reasons=["critical feature(s) drifted: jpeg_quality"],
        verdict_uri="v.json",
        log_dir=str(tmp_path / "logs"),
        now=at,
    )


def test_retrain_runs_once_per_cooldown_and_records_why(tmp_path: Path) -> None:
    cfg = _retrain_cfg(tmp_path)
    first = _launch(cfg, tmp_path, NOW)
    assert first.launched and first.launch is not None and first.launch.status == "succeeded"
    held = _launch(cfg, tmp_path, NOW + timedelta(hours=23))
    assert not held.launched and "cooldown" in held.reason
    later = _launch(cfg, tmp_path, NOW + timedelta(hours=25), version="4")
    assert later.launched
    assert (tmp_path / "launched.txt").read_text() == "3\n4\n"
    launches = retrain.load_launches(cfg.state_uri)
    assert [x.model_version for x in launches] == ["3", "4"]
    assert launches[0].reasons == ["critical feature(s) drifted: jpeg_quality"]
    assert Path(launches[0].log_uri).exists()


def test_failed_launch_does_not_hold_the_cooldown(tmp_path: Path) -> None:
    cfg = _retrain_cfg(tmp_path, code="raise SystemExit(5)")
    failed = _launch(cfg, tmp_path, NOW)
    assert not failed.launched and "exit 5" in failed.reason
    again = _launch(cfg, tmp_path, NOW + timedelta(minutes=5))
    assert "exit 5" in again.reason  # tried again: a failed launch is no reason to wait a day
    missing = RetrainConfig(command=["/nonexistent/launcher"], state_uri=str(tmp_path / "s2.json"))
    assert "exit 127" in _launch(missing, tmp_path, NOW).reason


def test_retrain_disabled_and_bad_placeholders(tmp_path: Path) -> None:
    assert not _launch(_retrain_cfg(tmp_path, enabled=False), tmp_path, NOW).launched
    bad = RetrainConfig(command=["echo", "{nope}"], state_uri=str(tmp_path / "s.json"))
    with pytest.raises(ConfigError, match=r"retrain\.command.*nope"):
        _launch(bad, tmp_path, NOW)
    (tmp_path / "corrupt.json").write_text("{not json")
    with pytest.raises(StorageError, match="corrupt"):
        retrain.load_launches(str(tmp_path / "corrupt.json"))


# -- metrics -----------------------------------------------------------------------------------------


class _Gateway(http.server.BaseHTTPRequestHandler):
    """A stand-in Pushgateway recording what it receives."""

    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append((self.command, self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_metrics_are_pushed_to_a_pushgateway_group() -> None:
    cfg = DriftConfig(min_rows=100, min_reference_rows=100)
    result, _ = compare(_frame(500, 0), _frame(300, 1, shift=0.05), cfg)
    reg = exposition.drift_registry(result, "det", "3", checked_at=1.0e9, last_trigger=None, launches=0)
    server = http.server.HTTPServer(("127.0.0.1", 0), _Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        exposition.push(reg, url, "aidetect-drift", "det", "3")
    finally:
        server.shutdown()
    (method, path, body) = _Gateway.received[-1]
    assert method == "PUT" and path == "/metrics/job/aidetect-drift/model/det/version/3"
    text = body.decode()
    assert 'aidetect_drift_detected{model="det",version="3"} 1.0' in text
    assert 'aidetect_drift_feature_drifted{feature="mean_r",model="det",version="3"} 1.0' in text
    assert 'aidetect_drift_last_check_timestamp_seconds{model="det",version="3"} 1e+09' in text
    score = next(c.score for c in result.features if c.column == "jpeg_quality")
    assert f'aidetect_drift_feature_score{{feature="jpeg_quality",model="det",version="3"}} {score!r}' in text
    from tests.helpers.servers import free_port

    with pytest.raises(ServiceUnavailableError, match="Pushgateway"):
        exposition.push(reg, f"http://127.0.0.1:{free_port()}", "aidetect-drift", "det", "3")


def test_pipeline_runs_are_pushed_with_gate_status() -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        exposition.push_pipeline_run(url, "training", "succeeded", gate=("det", "4", False))
    finally:
        server.shutdown()
    (_, path, body) = _Gateway.received[-1]
    assert path == "/metrics/job/aidetect-pipelines/pipeline/training/status/succeeded"
    text = body.decode()
    assert 'aidetect_gate_passed{model="det",version="4"} 0.0' in text
    assert 'aidetect_pipeline_last_success_timestamp_seconds{pipeline="training"}' in text
    failed = exposition.pipeline_registry("training", "failed", finished_at=5.0)
    assert (
        failed.get_sample_value("aidetect_pipeline_last_success_timestamp_seconds", {"pipeline": "training"})
        is None
    )


def test_retrain_without_data_is_reported_not_launched(tmp_path: Path) -> None:
    cfg = RetrainConfig(state_uri=str(tmp_path / "s.json"))  # the default command needs {data_uri}
    decision = _launch(cfg, tmp_path, NOW)
    assert not decision.launched and "retrain.data_uri" in decision.reason
    assert retrain.load_launches(cfg.state_uri) == []
    with_data = _retrain_cfg(tmp_path, data_uri="s3://labelled/new")
    with_data.command = [
        *with_data.command[:2],
        with_data.command[2].replace("{model_version}", "{data_uri}"),
    ]
    assert _launch(with_data, tmp_path, NOW).launched
    assert (tmp_path / "launched.txt").read_text() == "s3://labelled/new\n"
