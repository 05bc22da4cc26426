"""Where a model came from: git commit of the code, small JSON files beside checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from aidetect import storage


def git_commit() -> str:
    """``$AIDETECT_GIT_COMMIT``, else the checkout's HEAD (``-dirty`` when modified), else ``unknown``."""
    env = os.environ.get("AIDETECT_GIT_COMMIT")
    if env:
        return env
    repo = Path(__file__).resolve().parents[3]
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head or "unknown"


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    """Write JSON atomically (a reader never sees half a file)."""
    storage.write_bytes(str(path), (json.dumps(data, indent=2, sort_keys=True, default=str) + "\n").encode())


def read_json(path: str | Path) -> dict[str, Any]:
    from aidetect.errors import DataError

    try:
        return json.loads(storage.read_bytes(str(path)))
    except ValueError:
        raise DataError(f"{path} is not valid JSON") from None
