"""checkov over terraform/: no failed check, and every accepted exception is an inline
`#checkov:skip=CKV_...: reason` with a real reason. checkov runs once per session (module fixture), over
the repository's terraform/ and a deliberately insecure module together, to show it does flag problems.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
SKIP_COMMENT = re.compile(r"#\s*checkov:skip=(CKV2?_[A-Z0-9_]+)(?::(.*))?")

# checkov over the whole tree takes ~30 s here: every test of this file shares one run.
pytestmark = pytest.mark.slow

INSECURE_MODULE = """
resource "aws_s3_bucket" "open" {
  bucket = "aidetect-insecure-example"
}

resource "aws_ecr_repository" "mutable" {
  name                 = "mutable"
  image_tag_mutability = "MUTABLE"
}
"""


def checkov_bin() -> str:
    for candidate in (shutil.which("checkov"), REPO / ".venv-infra" / "bin" / "checkov"):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    pytest.fail("checkov not found: run `make infra-venv` (requirements/infra.txt)")


@pytest.fixture(scope="module")
def checkov_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    """Failed and skipped checks of one checkov run, split into 'repo' and 'insecure' findings."""
    tree = tmp_path_factory.mktemp("checkov")
    shutil.copytree(TERRAFORM, tree / "terraform", symlinks=True)
    (tree / "insecure").mkdir()
    (tree / "insecure" / "main.tf").write_text(INSECURE_MODULE)
    # As `checkov -d terraform --skip-download --compact --quiet`, but without --quiet so that skipped checks
    # are reported too, and over a tree that also holds the insecure module (one run for both).
    cmd = [
        checkov_bin(),
        "-d",
        str(tree),
        "--skip-download",
        "--compact",
        "--framework",
        "terraform",
        "-o",
        "json",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode in (0, 1), res.stderr[-3000:]
    reports = json.loads(res.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    out: dict[str, list[dict]] = {"failed": [], "skipped": [], "passed": []}
    for report in reports:
        for kind in out:
            out[kind] += report["results"].get(f"{kind}_checks", [])
    return out


def is_insecure(check: dict) -> bool:
    return check["file_path"].startswith("/insecure/")


def test_checkov_scanned_the_modules(checkov_results: dict) -> None:
    prefix = "/terraform/modules/"
    scanned = {
        c["file_path"].split("/")[3] for c in checkov_results["passed"] if c["file_path"].startswith(prefix)
    }
    assert {"network", "cluster", "node_groups", "storage", "ecr", "database", "irsa", "kms"} <= scanned
    assert len([c for c in checkov_results["passed"] if not is_insecure(c)]) > 300


def test_no_failed_checks_in_terraform(checkov_results: dict) -> None:
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]}) {c['check_name']}"
        for c in checkov_results["failed"]
        if not is_insecure(c)
    ]
    assert failed == [], "\n".join(failed)


def test_checkov_flags_the_insecure_module(checkov_results: dict) -> None:
    flagged = {c["check_id"] for c in checkov_results["failed"] if is_insecure(c)}
    assert {"CKV_AWS_145", "CKV_AWS_21", "CKV_AWS_51", "CKV_AWS_163"} <= flagged


def test_every_skip_is_inline_and_justified(checkov_results: dict) -> None:
    comments = []
    for path in sorted(TERRAFORM.rglob("*.tf")):
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            m = SKIP_COMMENT.search(line)
            if m:
                comments.append((path.relative_to(REPO), lineno, m.group(1), (m.group(2) or "").strip()))
    assert comments, "expected the documented exceptions"
    unjustified = [c for c in comments if len(c[3]) < 20]
    assert unjustified == [], f"skips need a reason of a sentence: {unjustified}"
    skipped_ids = {c["check_id"] for c in checkov_results["skipped"] if not is_insecure(c)}
    assert skipped_ids == {c[2] for c in comments}, (
        "every skipped check comes from an inline comment, and vice versa"
    )
    assert all(c["check_result"].get("suppress_comment") for c in checkov_results["skipped"])
