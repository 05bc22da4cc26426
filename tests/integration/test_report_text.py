"""``aidetect report`` with the text detector (issue 19): each environment lists its image model and, where
it pins one, its text model, with that version's gates and its latest drift verdict on text features."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from aidetect.cli import main
from aidetect.data.text.features import TEXT_FEATURE_COLUMNS
from aidetect.gitops.overlays import write_pin
from aidetect.monitoring.config import DriftConfig, RetrainConfig
from tests.helpers.drift import logged_drift_check

pytestmark = pytest.mark.slow  # a registry, a real drift check and the CLI (~20-40 s)
REPO = Path(__file__).resolve().parents[2]
TEXT_MODEL = "report-text-detector"


def _register_text(tmp_path: Path) -> str:
    from aidetect import registry

    with registry.run(run_name="report-text") as run_id:
        folder = tmp_path / "reports"
        folder.mkdir()
        check = {"name": "min_auc", "kind": "absolute", "metric": "roc_auc", "value": 0.94, "limit": 0.9,
                 "op": ">=", "passed": True, "detail": ""}  # fmt: skip
        report = {"gate_status": "passed", "gates": {"passed": True, "checks": [check]}}
        (folder / "gate_report.json").write_text(json.dumps(report))
        registry.log_artifacts(run_id, folder, "reports")
    tags = {
        "dataset_version": "txt-report",
        "git_commit": "abc1234",
        "gate_status": "passed",
        "threshold": "0.5",
    }
    tags["modality"] = "text"
    return registry.register_version(run_id, TEXT_MODEL, tags=tags, alias=None).version


def _features(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = TEXT_FEATURE_COLUMNS
    df = pd.DataFrame(rng.uniform(0.1 + shift, 0.3 + shift, (n, len(cols))), columns=cols)
    df["n_chars"] = rng.normal(600 * (1 + 4 * shift), 80, n)  # longer texts than the model was trained on
    df["probability_fake"] = rng.beta(2, 2, n)
    return df


def _text_drift(tmp_path: Path, version: str, cfg: DriftConfig) -> dict:
    """A real drift check of the text model: its text-feature reference and a window of longer texts."""
    ref, window = _features(400, seed=0), _features(300, seed=1, shift=0.5)
    return logged_drift_check(tmp_path, TEXT_MODEL, version, "txt-report", ref, window, "human", cfg)


def test_report_lists_the_text_model_with_its_gates_and_text_feature_drift(tmp_path: Path) -> None:
    version = _register_text(tmp_path)
    cfg = DriftConfig(
        min_rows=100, min_reference_rows=100, log_uri=str(tmp_path / "log"),
        reports_uri=str(tmp_path / "drift"), retrain=RetrainConfig(enabled=False),
    )  # fmt: skip
    verdict = _text_drift(tmp_path, version, cfg)
    assert verdict["drift_detected"]
    manifests = tmp_path / "manifests"
    shutil.copytree(REPO / "manifests", manifests, ignore=shutil.ignore_patterns("schemas"))
    write_pin(
        manifests, "production", TEXT_MODEL, int(version), f"s3://m/artifacts/2/{'b' * 32}/artifacts", "text"
    )
    page = tmp_path / "report.html"
    args = [
        "report",
        "--manifests",
        str(manifests),
        "--reports-uri",
        str(tmp_path / "drift"),
        "--out",
        str(page),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    # one line per served model (MLflow's download progress bars on stderr may share the output)
    lines = re.findall(r"(?:staging|canary|production)(?: \(text\))? +\S+ v\d+  gates: .*", result.output)
    assert f"production (text) {TEXT_MODEL} v{version}  gates: passed  drift: DRIFT" in lines
    # every environment's image model is still listed first, then its text model (staging's names a
    # version this registry never saw: unknown, said in place)
    staging = [i for i, x in enumerate(lines) if x.startswith("staging")]
    assert len(staging) == 2 and lines[staging[1]].startswith("staging (text) "), lines
    image, text = staging
    assert image < text and "aidetect-text-detector v1  gates: unknown" in lines[text]
    assert not any(x.startswith("canary (text)") for x in lines)
    html = page.read_text()
    section = html.split('<section id="env-production-text">', 1)[1].split("</section>", 1)[0]
    assert f"<h2>production (text): {TEXT_MODEL} v{version}</h2>" in section
    assert "min_auc" in section and "0.9400" in section
    assert "n_chars" in section  # the drifting text feature, from the verdict on text features
    assert '<section id="env-production">' in html  # the image model's section stays
