"""Drift scenarios on real data, small: CIFAKE reference vs held-back CIFAKE, JPEG q30, 512px photos.

Real parts end to end: a dataset version ingested from CIFAKE files, a serving bundle (a small untrained
network exported to ONNX: the predictions of "whatever model exists"), the reference profile built from
it, inference logs written by the serving InferenceLog, and ``aidetect drift check`` run as a CLI.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from prometheus_client.parser import text_string_to_metric_families

from aidetect.cli import main
from tests.helpers import drift as helpers
from tests.helpers.serving import make_bundle

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]

MODEL = "detector"
VERSION = "7"


@dataclass
class Scenario:
    root: Path
    reference: Path
    log: Path


@pytest.fixture(scope="module")
def scenario(shared_datasets: Path, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    from aidetect.data.versions import ingest
    from aidetect.monitoring.reference import BundleScorer, build_reference, write_reference

    root = tmp_path_factory.mktemp("drift-scenarios")
    zip_path = shared_datasets / "cifake-train.zip"
    names = helpers.cifake_names(zip_path)
    tree = helpers.extract_tree(zip_path, names[:700], root / "cifake-src")
    version = ingest(str(tree), root=str(root / "datasets")).version_id
    scorer = BundleScorer(str(make_bundle(root / "bundle", name=MODEL)))
    df, profile = build_reference(
        version,
        model_name=MODEL,
        model_version=VERSION,
        scorer=scorer,
        split="train",
        datasets_root=str(root / "datasets"),
    )
    reference = Path(write_reference(df, profile, str(root / "reference")))
    held = helpers.read_members(zip_path, names[1000:1250])  # never ingested
    log = root / "log"
    helpers.write_log(log, MODEL, VERSION, held, scorer)
    helpers.write_log(log, f"{MODEL}-q30", VERSION, [helpers.reencode(b, 30) for b in held], scorer)
    dev = helpers.dev512_images(shared_datasets / "real-vs-ai-512-dev.parquet", 250)
    helpers.write_log(log, f"{MODEL}-512", VERSION, dev, scorer)
    return Scenario(root=root, reference=reference, log=log)


@pytest.fixture(autouse=True)
def _launcher_as_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    """These scenarios have no dataset to grow: a launch runs the configured launcher on ``data_uri``
    (growing first is tested in tests/unit/test_drift_retrain.py)."""
    monkeypatch.setenv("AIDETECT_FEEDBACK__GROW__BEFORE_RETRAIN", "false")


def _config(tmp_path: Path, **extra: object) -> Path:
    marker = tmp_path / "retrain-launches.txt"
    launcher = f"open({str(marker)!r}, 'a').write('{{model_name}} {{model_version}}\\n')"
    cfg = {
        "min_rows": 150,
        "reports_uri": str(tmp_path / "reports"),
        "retrain": {
            "command": [sys.executable, "-c", launcher],
            "cooldown": "6h",
            "state_uri": str(tmp_path / "retrain-state.json"),
        },
        **extra,
    }
    path = tmp_path / "drift.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _check(s: Scenario, config: Path, model: str, *args: str) -> Result:
    argv = ["drift", "check", "--model", f"{model}/{VERSION}", "--config", str(config)]
    argv += ["--reference", str(s.reference), "--log-uri", str(s.log), *args]
    return CliRunner().invoke(main, argv)


def _verdict(result: Result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_held_back_training_distribution_is_not_drift(scenario: Scenario, tmp_path: Path) -> None:
    verdict = _verdict(_check(scenario, _config(tmp_path), MODEL))
    assert verdict["drift_detected"] is False, verdict["reasons"]
    assert verdict["rows_current"] == 250 and verdict["critical_drifted"] == []
    assert verdict["prediction"]["column"] == "probability_fake"
    assert Path(verdict["report_uri"]).read_text().lstrip().startswith("<!DOCTYPE html>")
    assert verdict["retrain"] is None
    assert not (tmp_path / "retrain-launches.txt").exists()


def test_jpeg_q30_reencoding_is_flagged(scenario: Scenario, tmp_path: Path) -> None:
    verdict = _verdict(_check(scenario, _config(tmp_path), f"{MODEL}-q30", "--no-retrain"))
    assert verdict["drift_detected"] is True and verdict["data_drift"] is True
    assert "jpeg_quality" in verdict["critical_drifted"]
    quality = next(f for f in verdict["features"] if f["column"] == "jpeg_quality")
    assert quality["drifted"] and quality["strength"] > 1.0


def test_512px_photos_against_cifake_reference_are_flagged(scenario: Scenario, tmp_path: Path) -> None:
    verdict = _verdict(_check(scenario, _config(tmp_path), f"{MODEL}-512", "--no-retrain"))
    assert verdict["drift_detected"] is True
    assert verdict["drift_share"] >= 0.5
    assert {"width", "height"} <= set(verdict["critical_drifted"])


def test_drift_triggers_retraining_once_within_the_cooldown(scenario: Scenario, tmp_path: Path) -> None:
    config = _config(tmp_path)
    first = _verdict(_check(scenario, config, f"{MODEL}-q30"))
    second = _verdict(_check(scenario, config, f"{MODEL}-q30"))
    assert first["retrain"]["action"] == "launched", first["retrain"]
    assert second["drift_detected"] is True and second["retrain"]["action"] == "skipped"
    assert "cooldown" in second["retrain"]["reason"]
    # back-to-back checks (often within one second) publish separate reports
    assert first["report_uri"] != second["report_uri"]
    assert Path(first["report_uri"]).exists() and Path(second["report_uri"]).exists()
    # the launcher ran exactly once, with the placeholders filled
    assert (tmp_path / "retrain-launches.txt").read_text() == f"{MODEL}-q30 {VERSION}\n"
    state = json.loads((tmp_path / "retrain-state.json").read_text())
    (launch,) = state["launches"]
    assert launch["status"] == "succeeded" and "jpeg_quality" in " ".join(launch["reasons"])
    assert launch["verdict_uri"] == first["verdict_uri"] and Path(launch["verdict_uri"]).exists()
    # the exposition carries the verdict and the launch count
    prom = (Path(tmp_path) / "aidetect-home" / "monitoring" / "drift.prom").read_text()
    samples = {
        (s.name, s.labels.get("feature", "")): s.value
        for fam in text_string_to_metric_families(prom)
        for s in fam.samples
    }
    assert samples[("aidetect_drift_detected", "")] == 1.0
    assert samples[("aidetect_retrain_launches", "")] == 1.0
    assert samples[("aidetect_drift_feature_drifted", "jpeg_quality")] == 1.0


def test_status_shows_the_latest_verdict_and_launches(scenario: Scenario, tmp_path: Path) -> None:
    config = _config(tmp_path)
    _verdict(_check(scenario, config, f"{MODEL}-q30"))
    out = CliRunner().invoke(main, ["drift", "status", "--config", str(config), "--model", f"{MODEL}-q30"])
    assert out.exit_code == 0, out.output
    assert "DRIFT" in out.output and "retrain" in out.output and "succeeded" in out.output


def test_thin_window_gives_no_verdict_and_no_retrain(scenario: Scenario, tmp_path: Path) -> None:
    config = _config(tmp_path, min_rows=1000)
    result = _check(scenario, config, f"{MODEL}-q30")
    assert result.exit_code == 3
    assert "error: the window has 250 usable rows, fewer than min_rows=1000" in result.output
    assert not (tmp_path / "reports").exists() and not (tmp_path / "retrain-launches.txt").exists()
    empty = _check(scenario, _config(tmp_path), "never-served")
    assert empty.exit_code == 3 and "0 usable rows" in empty.output
