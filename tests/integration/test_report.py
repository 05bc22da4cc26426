"""``aidetect report``: real registry versions with gate reports, pinned overlays, a real drift verdict;
the page renders in headless Chromium (screenshot checked), and degrades clearly when sources are missing."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from aidetect.cli import main
from aidetect.data.features import FEATURE_COLUMNS
from aidetect.monitoring.config import DriftConfig, RetrainConfig
from tests.helpers.drift import logged_drift_check

REPO = Path(__file__).resolve().parents[2]
MODEL = "report-detector"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
RED, GREEN = (198, 40, 40), (46, 125, 50)  # the page's drift and passed badges


def _register(tmp_path: Path, gate_status: str, value: float) -> str:
    from aidetect import registry

    with registry.run(run_name=f"report-{gate_status}") as run_id:
        folder = tmp_path / f"reports-{run_id}"
        folder.mkdir()
        check = {"name": "min_f1", "kind": "absolute", "metric": "f1", "value": value, "limit": 0.8,
                 "op": ">=", "passed": value >= 0.8, "detail": ""}  # fmt: skip
        report = {"gate_status": gate_status, "gates": {"passed": gate_status == "passed", "checks": [check]}}
        (folder / "gate_report.json").write_text(json.dumps(report))
        registry.log_artifacts(run_id, folder, "reports")
    tags = {
        "dataset_version": "ds-report",
        "git_commit": "abc1234",
        "gate_status": gate_status,
        "threshold": "0.5",
    }
    return registry.register_version(run_id, MODEL, tags=tags, alias=None).version


def _frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(0.5 + shift, 0.1, (n, len(FEATURE_COLUMNS))), columns=FEATURE_COLUMNS)
    df["probability_fake"] = rng.beta(2, 2, n)
    return df


def _drift_verdict(tmp_path: Path, version: str, cfg: DriftConfig) -> dict:
    """A real drift check of ``version``: a reference profile and a shifted logged window."""
    ref, window = _frame(400, seed=0), _frame(300, seed=1, shift=0.2)
    return logged_drift_check(tmp_path, MODEL, version, "ds-report", ref, window, "REAL", cfg)


def _manifests(tmp_path: Path, pins: dict[str, str]) -> Path:
    from aidetect.gitops.overlays import write_pin

    out = tmp_path / "manifests"
    shutil.copytree(REPO / "manifests", out, ignore=shutil.ignore_patterns("schemas"))
    for env, version in pins.items():
        write_pin(out, env, MODEL, int(version), f"s3://mlflow/artifacts/1/{'a' * 32}/artifacts")
    return out


def _screenshot(page: Path, tmp_path: Path) -> Image.Image:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (Debian package chromium; CI installs it)")
    shot = tmp_path / "report.png"
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        f"--user-data-dir={tmp_path / 'chrome'}", f"--screenshot={shot}", "--window-size=1280,1400",
        page.resolve().as_uri(),
    ]  # fmt: skip
    subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert shot.exists(), "chromium wrote no screenshot"
    return Image.open(shot).convert("RGB")


def _has_colour(img: Image.Image, rgb: tuple[int, int, int], min_pixels: int = 200) -> bool:
    px = np.asarray(img).reshape(-1, 3).astype(int)
    return int((np.abs(px - np.array(rgb)).sum(axis=1) < 12).sum()) >= min_pixels


def test_report_shows_versions_gates_and_drift_and_renders_in_chromium(tmp_path: Path) -> None:
    good = _register(tmp_path, "passed", 0.91)
    bad = _register(tmp_path, "failed", 0.62)
    cfg = DriftConfig(
        min_rows=100, min_reference_rows=100, log_uri=str(tmp_path / "log"),
        reports_uri=str(tmp_path / "drift"), retrain=RetrainConfig(enabled=False),
    )  # fmt: skip
    verdict = _drift_verdict(tmp_path, good, cfg)
    assert verdict["drift_detected"]
    manifests = _manifests(tmp_path, {"staging": bad, "canary": bad, "production": good})
    page = tmp_path / "site" / "report.html"
    result = CliRunner().invoke(
        main,
        [
            "report",
            "--manifests",
            str(manifests),
            "--reports-uri",
            str(tmp_path / "drift"),
            "--out",
            str(page),
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"production  {MODEL} v{good}  gates: passed  drift: DRIFT" in result.output
    assert f"staging     {MODEL} v{bad}  gates: failed  drift: no verdict" in result.output
    text = page.read_text()
    assert "<script" not in text and "http://" not in text.split("</style>")[0]  # self-contained
    assert f"production: {MODEL} v{good}" in text and "min_f1" in text and "0.6200" in text
    assert Path(verdict["report_uri"]).resolve().as_uri() in text  # link to the Evidently report
    assert "features drifted" in text  # the verdict's reasons
    img = _screenshot(page, tmp_path)
    assert img.size == (1280, 1400)
    grey = np.asarray(img.convert("L"), dtype=float)
    assert grey.std() > 20 and len(np.unique(grey)) > 50, "the screenshot is blank"
    assert _has_colour(img, RED) and _has_colour(img, GREEN), "badges did not render"


def test_report_degrades_clearly_without_manifests_or_registry_entries(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    result = CliRunner().invoke(
        main, ["report", "--manifests", str(tmp_path / "nowhere"), "--out", str(page)]
    )
    assert result.exit_code == 0, result.output
    assert "deployment state unavailable: no manifests folder" in result.output
    assert "deployment state unavailable" in page.read_text() and "No environments" in page.read_text()
    manifests = _manifests(tmp_path, {})  # pins a version this registry never saw
    result = CliRunner().invoke(main, ["report", "--manifests", str(manifests), "--out", str(page)])
    assert result.exit_code == 0, result.output
    assert "gates: unknown  drift: no verdict" in result.output
    assert "not found" in page.read_text()
