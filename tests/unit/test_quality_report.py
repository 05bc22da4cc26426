"""The operator report's live-quality block: a verdict's table and its plot over time (inline SVG)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from aidetect.feedback import quality
from aidetect.feedback.config import FeedbackConfig
from aidetect.monitoring import live_report
from tests.helpers.quality import MODEL, NOW, build, bundle_json


@pytest.fixture
def verdict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    s = build(tmp_path)
    monkeypatch.setenv("AIDETECT_FEEDBACK__LABELS__ROOT", str(s.labels_root))
    cfg = FeedbackConfig()
    cfg.labels.root, cfg.quality.min_labels, cfg.quality.min_f1 = str(s.labels_root), 50, 0.9
    bundles = quality.bundle_at(str(bundle_json(tmp_path / "bundle")))
    return quality.run_check(MODEL, "3", cfg, log_uri=str(s.log_root), bundles=bundles, now=NOW)


def test_the_block_shows_the_judged_version_and_plots_each_bucket(verdict: dict) -> None:
    page = live_report.section_html(verdict, "")
    assert '<span class="badge bad">degraded</span>' in page
    assert "<td>stable</td><td>60</td><td>0.850</td><td>0.842</td><td>0.200</td>" in page
    assert "<td>canary</td>" not in page  # v4's canary is another version's
    svg = ET.fromstring(page[page.index("<svg") : page.index("</svg>") + 6])
    ns = "{http://www.w3.org/2000/svg}"
    f1_line, accuracy_line = svg.findall(f"{ns}polyline")
    points = [tuple(map(float, p.split(","))) for p in f1_line.get("points").split()]
    assert len(points) == 2 and points[0][0] < points[1][0]  # two days, in time order
    assert accuracy_line.get("stroke-dasharray") and not f1_line.get("stroke-dasharray")
    gate = svg.find(f"{ns}line")
    y_gate = float(gate.get("y1"))
    by_day = {p["start"][:10]: p["f1"] for p in verdict["over_time"] if p["version"] == "3"}
    for (_, y), f1 in zip(points, [by_day[d] for d in sorted(by_day)], strict=True):
        assert (y > y_gate) == (f1 < 0.9)  # under the gate line means under the gate (SVG y grows down)
    assert "degradation: live F1 0.842" in page


def test_a_missing_verdict_is_a_note_on_the_page(tmp_path: Path) -> None:
    found, note = live_report.latest(MODEL, "3")
    assert found is None and "no live quality verdict" in note
    assert "no live quality verdict" in live_report.section_html(found, note)


def test_the_newest_verdict_of_the_version_is_found(verdict: dict) -> None:
    found, note = live_report.latest(MODEL, "3")
    assert note == "" and found is not None and found["verdict_uri"] == verdict["verdict_uri"]
