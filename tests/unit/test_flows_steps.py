"""Flows as pipeline steps: error recording, HTML reports, the retrain trigger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aidetect.errors import DataError
from aidetect.flows import monitoring, steprun
from aidetect.model.lineage import read_json, write_json
from tests.helpers.kfp_api import fake_kfp_api


def test_run_step_returns_the_result_and_records_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(steprun.FAILURES_ENV, str(tmp_path))
    assert steprun.run_step("ingest", lambda x: {"x": x}, x=3) == {"x": 3}
    assert list(tmp_path.iterdir()) == []


def test_run_step_records_a_library_error_in_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv(steprun.FAILURES_ENV, str(tmp_path))

    def broken() -> dict:
        raise DataError("dataset version abc has no val images")

    with pytest.raises(SystemExit) as exc:
        steprun.run_step("train", broken)
    assert exc.value.code == 1
    assert json.loads((tmp_path / "train.json").read_text()) == {
        "step": "train",
        "error": "dataset version abc has no val images",
    }
    assert capsys.readouterr().err.strip() == "error: step 'train': dataset version abc has no val images"


def test_run_step_names_an_unexpected_exception_type(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(steprun.FAILURES_ENV, str(tmp_path))
    with pytest.raises(SystemExit):
        steprun.run_step("evaluate", lambda: {}["missing"])
    assert json.loads((tmp_path / "evaluate.json").read_text())["error"] == "KeyError: 'missing'"


def test_validation_reports_become_self_contained_html(tmp_path: Path) -> None:
    from aidetect.data.demo import generate_demo
    from aidetect.data.validation import validate_version
    from aidetect.data.validation_report import render_html
    from aidetect.data.versions import ingest

    version = ingest(str(generate_demo(tmp_path / "img", n_per_class=12)), root=str(tmp_path / "ds"))
    result = validate_version(version.version_id, str(tmp_path / "ds"))
    html = render_html(result)
    assert html.startswith("<!doctype html>")
    assert f"<title>validation {result.version_id}</title>" in html
    assert "<table>" in html and "</html>" in html


def test_retrain_command_local_and_cluster() -> None:
    args = {"preset": "small", "gate_config": "", "model_name": "m"}
    local = monitoring.retrain_command("", "/data/{new}", args)
    assert local[1:] == [
        "-m", "aidetect.cli", "pipeline", "run", "training", "--local",
        "--data", "/data/{{new}}", "--param", "model_name=m", "--param", "preset=small",
    ]  # fmt: skip
    remote = monitoring.retrain_command("http://kfp:8888", "s3://b/p", args)
    assert remote[3:8] == ["pipeline", "submit", "training", "--host", "http://kfp:8888"]


def _verdict(path: Path) -> dict:
    write_json(
        path,
        {
            "model_name": "detector",
            "model_version": "3",
            "dataset_version": "abc123",
            "reasons": ["critical feature(s) drifted: jpeg_quality"],
            "verdict_uri": str(path),
        },
    )
    return read_json(path)


def test_trigger_submits_one_training_run_then_holds_the_cooldown(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("_KFP_RUNTIME", "true")  # as inside a KFP component: the launch must not inherit it
    verdict = _verdict(tmp_path / "verdict.json")
    with fake_kfp_api() as api:
        args = (verdict, "detector", api.url, "s3://bucket/labelled", {"preset": "tiny"})
        first = monitoring.trigger_retrain(*args, grow_first=False)
        second = monitoring.trigger_retrain(*args, grow_first=False)
        runs = api.received("POST", "/apis/v2beta1/runs")
    assert first["action"] == "launched", first
    assert "jpeg_quality" in first["reason"]
    assert second["action"] == "skipped" and "cooldown" in second["reason"]
    assert len(runs) == 1, "a second drifted check within the cooldown must not start another run"
    params = runs[0].body["runtime_config"]["parameters"]
    assert params == {
        "data_uri": "s3://bucket/labelled",
        "model_name": "detector",
        "preset": "tiny",
        "init_from": "models:/detector/3",  # warm start from the model that drifted
    }


def test_a_failed_launch_fails_the_step_and_does_not_hold_the_cooldown(tmp_path: Path) -> None:
    from tests.helpers.servers import free_port

    verdict = _verdict(tmp_path / "verdict.json")
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(Exception, match="retraining launch failed"):
        monitoring.trigger_retrain(verdict, "detector", dead, "s3://bucket/labelled", {}, grow_first=False)
    with fake_kfp_api() as api:
        again = monitoring.trigger_retrain(
            verdict, "detector", api.url, "s3://bucket/labelled", {}, grow_first=False
        )
        assert again["action"] == "launched"
        assert len(api.received("POST", "/apis/v2beta1/runs")) == 1
