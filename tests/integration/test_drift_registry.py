"""Reference profiles stored with registered versions in a real MLflow server, and drift checks that
find them by version or alias; unknown versions and missing profiles are clear one-line errors."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from aidetect.cli import main
from tests.helpers import drift as helpers
from tests.helpers.serving import make_bundle

pytestmark = pytest.mark.slow


@pytest.fixture
def registered(mlflow_server_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A registered version (alias candidate) whose lineage names a demo dataset and whose run holds a
    serving bundle; plus a second version with no reference profile."""
    from aidetect import registry
    from aidetect.data.demo import generate_demo
    from aidetect.data.versions import ingest

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server_uri)
    name = f"drift-{time.time_ns()}"
    datasets = tmp_path / "datasets"
    dataset = ingest(str(generate_demo(tmp_path / "demo", n_per_class=150)), root=str(datasets)).version_id
    bundle = make_bundle(tmp_path / "bundle", name=name)
    versions = []
    for _ in range(2):
        with registry.run(run_name="drift-test") as run_id:
            registry.log_artifacts(run_id, bundle, "serving")
        tags = {"dataset_version": dataset, "git_commit": "abc", "gate_status": "passed", "threshold": "0.5"}
        versions.append(registry.register_version(run_id, name, tags=tags).version)
    return {"name": name, "versions": versions, "datasets": str(datasets), "demo": tmp_path / "demo"}


def test_reference_is_stored_with_the_version_and_found_by_alias(registered: dict, tmp_path: Path) -> None:
    name, (v1, v2) = registered["name"], registered["versions"]
    from aidetect import registry

    registry.set_alias(name, "production", v1)
    runner = CliRunner()
    built = runner.invoke(
        main,
        [
            "drift",
            "reference",
            "--model",
            f"{name}/{v1}",
            "--split",
            "train",
            "--datasets-root",
            registered["datasets"],
        ],
    )
    assert built.exit_code == 0, built.output
    assert f"reference profile of {name} v{v1}" in built.output and "probability_fake" in built.output

    from aidetect.monitoring.reference import load_reference

    df, profile = load_reference(name, "production")
    assert profile.model_version == v1 and profile.split == "train" and len(df) == profile.rows >= 200
    assert {"probability_fake", "p_REAL", "p_FAKE", "true_label", "jpeg_quality"} <= set(df.columns)

    # log the same demo distribution for v1 and check it through the alias
    images = [p.read_bytes() for p in sorted(registered["demo"].rglob("*.png"))]
    from aidetect.monitoring.reference import BundleScorer

    scorer = BundleScorer(f"models:/{name}/{v1}")
    log = tmp_path / "log"
    helpers.write_log(log, name, v1, images, scorer, ts=datetime.now(UTC))
    config = tmp_path / "drift.yaml"
    config.write_text(
        yaml.safe_dump({"min_rows": 100, "min_reference_rows": 100, "reports_uri": str(tmp_path / "r")})
    )
    checked = runner.invoke(
        main,
        ["drift", "check", "--model", f"{name}@production", "--config", str(config), "--log-uri", str(log)],
    )
    assert checked.exit_code == 0, checked.output
    verdict = json.loads(checked.stdout)
    assert verdict["model_version"] == v1 and verdict["rows_current"] == len(images)
    assert verdict["drift_detected"] is False, verdict["reasons"]

    # v2 has no profile: a clear error that says how to make one
    missing = runner.invoke(main, ["drift", "check", "--model", f"{name}/{v2}", "--config", str(config)])
    assert missing.exit_code == 1
    assert "no reference/ profile" in missing.output and "aidetect drift reference" in missing.output
    assert "Traceback" not in missing.output


def test_unknown_version_is_a_one_line_error(mlflow_server_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server_uri)
    result = CliRunner().invoke(main, ["drift", "check", "--model", "never-registered/99"])
    assert result.exit_code == 1
    assert result.output.startswith("error:") and result.output.count("\n") == 1
    assert "99" in result.output
