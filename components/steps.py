"""The pipeline steps as plain functions over local paths: what each KFP component body calls.

No kfp import here: a KFP pod, ``kfp.local`` and tests run exactly these functions. Each step takes the
references written by the steps before it (small JSON files or folders) and returns a JSON-able dict that
the component maps onto KFP artifact metadata and metrics.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aidetect.errors import AidetectError

# Set by the local runner: each failing step writes {step, error} here so the run can name it in one line.
FAILURES_ENV = "AIDETECT_PIPELINE_FAILURES"


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically (parents created)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True, default=str)
    os.chmod(tmp, 0o644)
    os.replace(tmp, p)


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def flat_metadata(data: dict[str, Any]) -> dict[str, Any]:
    """The scalar entries of ``data`` (KFP metadata shows them in the UI); nested values as JSON text."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, (str, int, float, bool)) or value is None:
            out[key] = value
        else:
            out[key] = json.dumps(value, sort_keys=True, default=str)
    return out


def _record_failure(step: str, message: str) -> None:
    folder = os.environ.get(FAILURES_ENV)
    if folder:
        write_json(Path(folder) / f"{step}.json", {"step": step, "error": message})


def run_step(step: str, fn: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    """Run ``fn(**kwargs)``; on failure print ``error: step '<step>': <reason>``, record it, and re-raise."""
    try:
        return fn(**kwargs)
    except AidetectError as exc:
        message = str(exc)
    except Exception as exc:
        traceback.print_exc()
        message = f"{type(exc).__name__}: {exc}"
    print(f"error: step '{step}': {message}", file=sys.stderr, flush=True)
    _record_failure(step, message)
    raise SystemExit(1)
