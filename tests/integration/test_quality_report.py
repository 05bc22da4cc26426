"""``aidetect report`` shows the deployed version's live quality: the latest ``aidetect quality check``
verdict per track and its plot over time, in a page that stays script-free; no verdict is a note."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from aidetect.cli import main
from aidetect.feedback import quality
from aidetect.feedback.config import FeedbackConfig
from tests.helpers.quality import MODEL, build, bundle_json

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # the page asks the registry about every pinned version


def _manifests(tmp_path: Path, version: int) -> Path:
    from aidetect.gitops.overlays import write_pin

    out = tmp_path / "manifests"
    shutil.copytree(REPO / "manifests", out, ignore=shutil.ignore_patterns("schemas"))
    write_pin(out, "production", MODEL, version, f"s3://mlflow/artifacts/1/{'a' * 32}/artifacts")
    return out


def test_the_report_shows_live_quality_and_its_plot(tmp_path: Path) -> None:
    s = build(tmp_path, now=datetime.now(UTC))
    cfg = FeedbackConfig()
    cfg.labels.root, cfg.quality.min_labels, cfg.quality.min_f1 = str(s.labels_root), 50, 0.9
    bundles = quality.bundle_at(str(bundle_json(tmp_path / "bundle")))
    quality.run_check(MODEL, "3", cfg, log_uri=str(s.log_root), bundles=bundles)
    page = tmp_path / "report.html"
    manifests = _manifests(tmp_path, 3)
    result = CliRunner().invoke(main, ["report", "--manifests", str(manifests), "--out", str(page)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    at = lines.index(f"production  {MODEL} v3  gates: unknown  drift: no verdict")
    assert lines[at + 1].split()[:3] == ["live", "quality:", "degraded"]
    text = page.read_text()
    assert "<script" not in text
    section = text[text.index('id="env-production"') :]
    section = section[: section.index("</section>")]
    assert "Live quality" in section and '<span class="badge bad">degraded</span>' in section
    assert "<td>stable</td><td>60</td><td>0.850</td><td>0.842</td>" in section
    svg = ET.fromstring(section[section.index("<svg") : section.index("</svg>") + 6])
    assert len(svg.findall("{http://www.w3.org/2000/svg}polyline")) == 2  # F1 and accuracy of stable
    staging = text[text.index('id="env-staging"') :]  # the repo pins aidetect-detector v1 there
    staging = staging[: staging.index("</section>")]
    assert "no live quality verdict for this version yet" in staging and "<svg" not in staging
