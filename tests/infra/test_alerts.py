"""The PrometheusRule: promtool checks every rule and runs the alert unit tests; runbooks exist."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from aidetect.monitoring import alerts

REPO = Path(__file__).resolve().parents[2]
RULE_FILE = REPO / "manifests" / "monitoring" / "prometheusrule.yaml"
UNIT_TESTS = Path(__file__).parent / "promtool" / "aidetect_rules_test.yaml"
DOCS = REPO / "docs" / "monitoring.md"


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.skip("promtool is not installed (Debian package prometheus; CI installs it)")
    return found


def _committed_groups() -> list[dict]:
    doc = yaml.safe_load(RULE_FILE.read_text())
    assert doc["kind"] == "PrometheusRule"
    return doc["spec"]["groups"]


def _rules_file(folder: Path, groups: list[dict]) -> Path:
    path = folder / "aidetect.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


def test_promtool_checks_every_rule(tmp_path: Path) -> None:
    groups = _committed_groups()
    out = subprocess.run(
        [promtool(), "check", "rules", str(_rules_file(tmp_path, groups))], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    total = len(alerts.RECORDING_RULES) + len(alerts.ALERT_RULES)
    assert f"SUCCESS: {total} rules found" in out.stdout


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    groups = _committed_groups()
    groups[1]["rules"][0]["expr"] = "sum by (namespace (up"
    out = subprocess.run(
        [promtool(), "check", "rules", str(_rules_file(tmp_path, groups))], capture_output=True, text=True
    )
    assert out.returncode != 0 and "AidetectPredictorDown" in out.stdout + out.stderr


def test_alert_unit_tests_pass(tmp_path: Path) -> None:
    _rules_file(tmp_path, _committed_groups())
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    out = subprocess.run(
        [promtool(), "test", "rules", UNIT_TESTS.name], cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_unit_tests_cover_the_main_alerts() -> None:
    tested = set(re.findall(r"alertname: (\w+)", UNIT_TESTS.read_text()))
    defined = {r["alert"] for r in alerts.ALERT_RULES}
    assert tested == defined


def test_alert_unit_tests_fail_when_a_threshold_changes(tmp_path: Path) -> None:
    groups = _committed_groups()
    for rule in groups[1]["rules"]:
        if rule["alert"] == "AidetectHighErrorRate":
            rule["expr"] = rule["expr"].replace(f"> {alerts.ERROR_RATIO}", "> 0.5")
    _rules_file(tmp_path, groups)
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    out = subprocess.run(
        [promtool(), "test", "rules", UNIT_TESTS.name], cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode != 0 and "AidetectHighErrorRate" in out.stdout + out.stderr


def test_every_alert_is_labelled_and_has_a_runbook_section() -> None:
    headings = {
        re.sub(r"[^a-z0-9-]", "", line.lstrip("#").strip().lower().replace(" ", "-"))
        for line in DOCS.read_text().splitlines()
        if line.startswith("#")
    }
    for rule in alerts.ALERT_RULES:
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        anchor = rule["annotations"]["runbook_url"].rsplit("#", 1)[1]
        assert anchor in headings, f"docs/monitoring.md needs a '### {rule['alert']}' runbook section"
