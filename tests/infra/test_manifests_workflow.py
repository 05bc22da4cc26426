"""The promotion CI workflow: it runs on manifest changes and calls commands and tests that exist."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from tests.helpers.servers import tool

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "promotion.yml"


def test_workflow_triggers_on_manifest_changes_and_runs_verify() -> None:
    doc = yaml.safe_load(WORKFLOW.read_text())
    trigger = doc[True] if True in doc else doc["on"]  # YAML 1.1 reads the key `on` as true
    assert "manifests/**" in trigger["pull_request"]["paths"]
    steps = doc["jobs"]["verify"]["steps"]
    scripts = "\n".join(s.get("run", "") for s in steps)
    assert "aidetect promote verify --base" in scripts
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0
    for test_file in re.findall(r"tests/\S+\.py", scripts):
        assert (REPO / test_file).is_file(), test_file
    assert doc["permissions"] == {"contents": "read"}


def test_verify_command_passes_on_the_repository() -> None:
    res = subprocess.run([tool("aidetect"), "promote", "verify"], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr
    assert "rendered production" in res.stdout and res.stdout.strip().endswith("ok")
