"""The training pipeline run locally by kfp.local's SubprocessRunner, end to end on tiny demo data."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from aidetect.cli import main

pytestmark = pytest.mark.slow

# Tiny settings: the pipeline's own steps, sized to keep this file well under CI's budget.
N_PER_CLASS = 48


@pytest.fixture(scope="module")
def demo_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from aidetect.data.demo import generate_demo

    return generate_demo(tmp_path_factory.mktemp("demo") / "images", n_per_class=N_PER_CLASS, seed=0)


def _run(*args: str):
    return CliRunner().invoke(main, ["pipeline", "run", "training", "--local", *args])


def _run_dirs(home: Path) -> list[Path]:
    return sorted((home / "pipeline-runs").glob("training-*"))


def _steps_run(run_dir: Path) -> set[str]:
    return {p.parent.name for p in run_dir.glob("artifacts/*/*/executor_output.json")}


def test_a_failing_first_step_names_itself_and_stops_the_run(tmp_path: Path, _isolated_home: Path) -> None:
    res = _run("--data", str(tmp_path / "no-such-folder"))
    assert res.exit_code != 0
    line = res.output.strip().splitlines()[-1]
    assert line.startswith("error: pipeline aidetect-training stopped: step 'ingest' failed: "), res.output
    assert "no-such-folder" in line
    (run_dir,) = _run_dirs(_isolated_home)
    assert _steps_run(run_dir) == set()
    assert not (_isolated_home / "mlflow.db").exists(), "nothing may be registered"


def test_a_failing_validation_stops_before_training(
    demo_images: Path, tmp_path: Path, _isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "with-duplicates"
    shutil.copytree(demo_images, data)
    first = sorted((data / "FAKE").iterdir())[0]
    shutil.copy(first, first.with_name("copy-" + first.name))
    monkeypatch.setenv("AIDETECT_VALIDATION__DUPLICATES", "fail")  # duplicates become a critical failure
    res = _run("--data", str(data))
    assert res.exit_code != 0
    line = res.output.strip().splitlines()[-1]
    assert "step 'validate' failed: dataset version" in line and "failed validation" in line, res.output
    (run_dir,) = _run_dirs(_isolated_home)
    assert _steps_run(run_dir) == {"ingest"}, "no step after validate may run"
    assert not (_isolated_home / "mlflow.db").exists()
    summary = run_dir / "summary.json"
    assert not summary.exists()
    log = (run_dir / "pipeline.log").read_text()
    assert "error: step 'validate'" in log
    assert json.loads((run_dir / "failures" / "validate.json").read_text())["step"] == "validate"


def _gates(path: Path, min_accuracy: float) -> str:
    """Gate rules for tiny data: only an absolute accuracy floor (slices are too small to judge here)."""
    path.write_text(
        f"min: {{accuracy: {min_accuracy}}}\nmax: {{}}\n"
        "slices: {min: 0.0, max_gap: 1.0}\nperturbations: {min: 0.0, max_drop: 1.0}\n"
    )
    return str(path)


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


@dataclass
class Trained:
    home: Path
    args: list[str]
    output: str
    steps: dict


@pytest.fixture(scope="module")
def trained(demo_images: Path, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """One local training pipeline run on demo data, shared by the tests below (each run costs minutes)."""
    home = tmp_path_factory.mktemp("trained") / "home"
    gates = _gates(home.parent / "gates.yaml", 0.0)
    args = ["--data", str(demo_images), "--param", "preset=ci-tiny", "--param", f"gate_config={gates}"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIDETECT_HOME", str(home))
        mp.setenv("AIDETECT_GIT_COMMIT", "e2e-fixed-commit")  # the code version is an input too
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("AIDETECT_DATASETS", raising=False)
        res = _run(*args)
    assert res.exit_code == 0, res.output
    (run_dir,) = _run_dirs(home)
    return Trained(home, args, res.output, _summary(run_dir)["steps"])


@pytest.fixture
def in_trained_home(trained: Trained, monkeypatch: pytest.MonkeyPatch) -> Trained:
    monkeypatch.setenv("AIDETECT_HOME", str(trained.home))
    monkeypatch.setenv("AIDETECT_GIT_COMMIT", "e2e-fixed-commit")
    return trained


def test_end_to_end_registers_the_gated_model_with_its_artifacts(
    in_trained_home: Trained, tmp_path: Path
) -> None:
    from aidetect import registry

    t = in_trained_home
    assert "model aidetect-detector version 1 registered: models:/aidetect-detector/1" in t.output
    steps = t.steps
    assert list(steps) == ["ingest", "validate", "train", "evaluate", "gate", "optimize", "register"]
    dataset_version = steps["validate"]["parameters"]["Output"]

    # the registered version: lineage tags, fingerprint, alias, and its artifacts in the registry
    info = registry.get_version("aidetect-detector", "candidate")
    assert info.version == "1"
    assert info.tags["dataset_version"] == dataset_version
    assert info.tags["gate_status"] == "passed" and info.tags["git_commit"] == "e2e-fixed-commit"
    assert info.tags["fingerprint"] == steps["register"]["artifacts"]["registered"]["metadata"]["fingerprint"]
    got = tmp_path / "got"
    gate_md = registry.download_artifacts("aidetect-detector", "1", "reports/gate_report.md", got)
    assert Path(gate_md).read_text().strip(), "the gate report is registered with the version"
    bundle = Path(registry.download_artifacts("aidetect-detector", "1", "serving", got))
    spec = json.loads((bundle / "bundle.json").read_text())
    assert (spec["model_name"], spec["model_version"]) == ("aidetect-detector", "1")
    assert spec["dataset_version"] == dataset_version and (bundle / "model.onnx").stat().st_size > 1000
    for artifact in ("checkpoint/model.pt", "model_card.md", "reference"):
        assert Path(registry.download_artifacts("aidetect-detector", "1", artifact, got)).exists()

    # the KFP artifacts the UI draws
    cls = steps["evaluate"]["artifacts"]["classification"]["metadata"]
    assert [s["displayName"] for s in cls["confusionMatrix"]["annotationSpecs"]] == ["REAL", "FAKE"]
    assert sum(sum(r["row"]) for r in cls["confusionMatrix"]["rows"]) > 0
    assert len(cls["confidenceMetrics"]) >= 2
    gate_report = Path(steps["gate"]["artifacts"]["report"]["uri"]).read_text()
    assert gate_report == Path(gate_md).read_text()
    html = Path(steps["validate"]["artifacts"]["report"]["uri"]).read_text()
    assert html.startswith("<!doctype html>") and dataset_version in html


def test_identical_inputs_reuse_the_dataset_and_register_nothing_new(in_trained_home: Trained) -> None:
    from aidetect import registry

    t = in_trained_home
    res = _run(*t.args)
    assert res.exit_code == 0, res.output
    assert "model aidetect-detector version 1 already registered (identical inputs)" in res.output
    again = _summary(_run_dirs(t.home)[-1])["steps"]
    assert again["ingest"]["artifacts"]["dataset"]["metadata"]["created"] is False
    assert again["validate"]["parameters"]["Output"] == t.steps["validate"]["parameters"]["Output"]
    assert [v.version for v in registry.list_versions("aidetect-detector")] == ["1"]


def test_monitoring_pipeline_retrains_once_per_cooldown(
    in_trained_home: Trained, demo_images: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Drifted traffic (JPEG quality 30) for version 1: the monitoring pipeline finds drift and submits the
    training pipeline to the KFP API once; a second drifted check within the cooldown submits nothing.
    The verdicts and the launch record go where the pipeline's parameters say (object storage on a
    cluster, where a step's pod loses its disk), not under AIDETECT_HOME."""
    from datetime import UTC, datetime

    from aidetect.monitoring.reference import BundleScorer
    from tests.helpers.drift import reencode, write_log
    from tests.helpers.kfp_api import fake_kfp_api

    t = in_trained_home
    images = [reencode(p.read_bytes(), 30) for p in sorted(demo_images.rglob("*.png"))[:120]]
    log_root = t.home / "drifted-log"
    scorer = BundleScorer("models:/aidetect-detector/1")
    write_log(log_root, "aidetect-detector", "1", images, scorer, ts=datetime.now(UTC))
    monkeypatch.setenv("AIDETECT_DRIFT__MIN_ROWS", "50")
    monkeypatch.setenv("AIDETECT_DRIFT__MIN_REFERENCE_ROWS", "5")
    monkeypatch.setenv("AIDETECT_FEEDBACK__GROW__BEFORE_RETRAIN", "false")  # retrain on --data as given
    with fake_kfp_api() as api:
        args = ["pipeline", "run", "monitoring", "--local", "--data", "s3://bucket/labelled"]
        args += ["--param", "alias=candidate", "--param", f"inference_log={log_root}"]
        args += ["--param", f"kfp_host={api.url}", "--param", "preset=ci-tiny"]
        state, reports = tmp_path / "monitoring" / "retrain-state.json", tmp_path / "monitoring" / "drift"
        args += ["--param", f"retrain_state={state}", "--param", f"drift_reports={reports}"]
        first = CliRunner().invoke(main, args)
        assert first.exit_code == 0, first.output
        second = CliRunner().invoke(main, args)
        assert second.exit_code == 0, second.output
        runs = api.received("POST", "/apis/v2beta1/runs")
    mon = sorted((t.home / "pipeline-runs").glob("monitoring-*"))
    first_steps, second_steps = (_summary(d)["steps"] for d in mon[-2:])
    assert first_steps["drift-check"]["parameters"]["Output"] is True
    assert first_steps["quality-check"]["parameters"]["Output"] is False  # no labels: no verdict
    assert first_steps["decide-retrain"]["parameters"]["Output"] is True
    assert "jpeg_quality" in Path(first_steps["drift-check"]["artifacts"]["verdict"]["uri"]).read_text()
    assert first_steps["trigger-retrain"]["parameters"]["Output"] == "launched"
    # the second run is within the cooldown: asked before growing, so grow says so and nothing launches
    assert second_steps["grow"]["parameters"]["Output"] is False and "trigger-retrain" not in second_steps
    assert "cooldown" in second_steps["grow"]["artifacts"]["train_on"]["metadata"]["reason"]
    assert len(runs) == 1
    assert runs[0].body["runtime_config"]["parameters"]["data_uri"] == "s3://bucket/labelled"
    (launch,) = json.loads(state.read_text())["launches"]
    drift_verdict = json.loads(Path(first_steps["drift-check"]["artifacts"]["verdict"]["uri"]).read_text())
    assert (
        drift_verdict["verdict_uri"].startswith(str(reports)) and Path(drift_verdict["verdict_uri"]).exists()
    )
    assert launch["verdict_uri"] == drift_verdict["verdict_uri"]


def test_a_failed_gate_skips_optimize_and_register(
    demo_images: Path, tmp_path: Path, _isolated_home: Path
) -> None:
    gates = _gates(tmp_path / "strict.yaml", 1.01)  # no model can pass
    res = _run("--data", str(demo_images), "--param", "preset=ci-tiny", "--param", f"gate_config={gates}")
    assert res.exit_code == 3, res.output
    assert "gate failed: nothing registered (min accuracy: accuracy" in res.output
    (run_dir,) = _run_dirs(_isolated_home)
    assert list(_summary(run_dir)["steps"]) == ["ingest", "validate", "train", "evaluate", "gate"]
    from aidetect import registry

    assert registry.list_versions("aidetect-detector") == []


def test_demo_serves_the_registered_model_and_answers_one_v2_request(
    in_trained_home: Trained, demo_images: Path, tmp_path: Path
) -> None:
    """The last step of `aidetect demo`: `aidetect serve` on the registered version, one V2 request."""
    from aidetect.commands.demo import DemoState, step_serve

    state = DemoState(workdir=tmp_path / "demo")
    state.workdir.mkdir()
    state.facts["demo images"] = str(demo_images)
    state.model_uri = "models:/aidetect-detector/1"
    step_serve(state)
    answer = state.facts["V2 request"]
    assert "/v2/models/aidetect-detector/infer -> " in answer
    assert answer.split(" -> ")[1].split(",")[0] in {"REAL", "FAKE"} and "P(FAKE)=" in answer
