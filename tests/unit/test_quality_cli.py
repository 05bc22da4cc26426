"""``aidetect quality check``: the table, exit codes 0 / 3 / 4, and a degraded verdict that starts
retraining through ``trigger_retrain`` (a loopback stand-in for the KFP API records the submitted run)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from aidetect.cli import main
from aidetect.monitoring.retrain import load_launches
from tests.helpers.kfp_api import fake_kfp_api
from tests.helpers.quality import MODEL, Scenario, build, bundle_json


@pytest.fixture
def scenario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Scenario:
    s = build(tmp_path, now=datetime.now(UTC))
    monkeypatch.setenv("AIDETECT_FEEDBACK__LABELS__ROOT", str(s.labels_root))
    return s


def _run(s: Scenario, tmp_path: Path, *extra: str) -> object:
    args = ["quality", "check", "--model", f"{MODEL}/3", "--log-uri", str(s.log_root),
            "--bundle", str(bundle_json(tmp_path / "bundle")), *extra]  # fmt: skip
    return CliRunner().invoke(main, args)


def test_prints_the_table_and_exits_0_with_a_verdict(scenario: Scenario, tmp_path: Path) -> None:
    out = _run(scenario, tmp_path, "--min-f1", "0.8", "--min-labels", "50")
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["version", "track", "labels", "accuracy", "f1", "ece", "P/R", "FAKE", "P/R",
                                "REAL", "status"]  # fmt: skip
    stable = next(line.split() for line in lines if line.split()[:2] == ["3", "stable"])
    assert stable[2:6] == ["60", "0.850", "0.842", "0.200"] and stable[-1] == "ok"
    assert "confusion v3 stable (rows: true REAL, FAKE; columns: predicted): [[27, 3], [6, 24]]" in lines
    assert "OK: detector v3" in out.stderr and "report: " in out.stderr


def test_too_few_labels_exits_3_without_a_verdict(scenario: Scenario, tmp_path: Path) -> None:
    out = _run(scenario, tmp_path, "--min-labels", "500", "--fail-on-degradation")
    assert out.exit_code == 3, out.output
    assert "no verdict: detector v3" in out.stderr and "\nverdict: " not in out.stderr
    quiet = _run(scenario, tmp_path, "--min-labels", "500", "--allow-no-verdict")
    assert quiet.exit_code == 0 and "no verdict: detector v3" in quiet.stderr, quiet.output


def test_degraded_exits_4_and_launches_one_retrain(
    scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIDETECT_DRIFT__RETRAIN__DATA_URI", "s3://bucket/labelled")
    monkeypatch.setenv("AIDETECT_FEEDBACK__GROW__BEFORE_RETRAIN", "false")  # train on data_uri as given
    with fake_kfp_api() as api:
        out = _run(scenario, tmp_path, "--min-f1", "0.9", "--min-labels", "50", "--json",
                   "--kfp-host", api.url, "--fail-on-degradation")  # fmt: skip
        again = _run(scenario, tmp_path, "--min-f1", "0.9", "--min-labels", "50", "--kfp-host", api.url)
        runs = api.received("POST", "/apis/v2beta1/runs")
    assert out.exit_code == 4, out.output
    verdict = json.loads(out.stdout)
    assert verdict["status"] == "degraded" and verdict["retrain"]["action"] == "launched"
    assert verdict["reasons"][0].startswith("degradation: live F1 0.842 < 0.9 over 60 labels")
    assert again.exit_code == 0 and "cooldown" in again.stderr  # the second degraded check is held
    assert len(runs) == 1
    assert runs[0].body["runtime_config"]["parameters"]["data_uri"] == "s3://bucket/labelled"
    (launch,) = _launches()
    assert launch.reasons[0].startswith("degradation") and launch.verdict_uri == verdict["verdict_uri"]


def _launches() -> list:
    from aidetect.monitoring.config import load_drift_config
    from aidetect.monitoring.retrain import state_uri

    return load_launches(state_uri(load_drift_config().retrain))


def test_no_retrain_only_reports(scenario: Scenario, tmp_path: Path) -> None:
    out = _run(scenario, tmp_path, "--min-f1", "0.9", "--min-labels", "50", "--no-retrain", "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["retrain"] is None and _launches() == []


def test_bad_input_is_one_error_line(scenario: Scenario, tmp_path: Path) -> None:
    out = _run(scenario, tmp_path, "--min-f1", "1.5")
    assert out.exit_code != 0 and "quality.min_labels" in out.output and "Traceback" not in out.output
    missing = CliRunner().invoke(
        main, ["quality", "check", "--model", "detector/3", "--log-uri", str(tmp_path / "nowhere"),
               "--bundle", str(bundle_json(tmp_path / "b"))],
    )  # fmt: skip
    assert missing.exit_code != 0 and "error:" in missing.output and "Traceback" not in missing.output
