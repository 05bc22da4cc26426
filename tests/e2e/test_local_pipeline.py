"""The training pipeline run locally by kfp.local's SubprocessRunner, end to end on tiny demo data."""

from __future__ import annotations

import json
import shutil
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
