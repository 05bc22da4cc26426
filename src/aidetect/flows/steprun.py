"""Running one flow as a pipeline step: one ``error:`` line naming the step, exit 1, nothing else.

Used by the KFP components (and by anything else that runs a flow as a separate process): the local
runner collects the recorded failures to name the failing step in one line.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from aidetect.errors import AidetectError
from aidetect.model.lineage import write_json

T = TypeVar("T")

# Set by the local runner: each failing step writes {step, error} here so the run can name it in one line.
FAILURES_ENV = "AIDETECT_PIPELINE_FAILURES"


def run_step(step: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn``; on failure print ``error: step '<step>': <reason>``, record it, and exit 1."""
    started = time.monotonic()
    try:
        result = fn(*args, **kwargs)
        print(f"step '{step}' finished in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
        return result
    except AidetectError as exc:
        message = str(exc)
    except Exception as exc:  # an unexpected failure: the trace goes to the step's log, one line to the user
        traceback.print_exc()
        message = f"{type(exc).__name__}: {exc}"
    print(f"error: step '{step}': {message}", file=sys.stderr, flush=True)
    folder = os.environ.get(FAILURES_ENV)
    if folder:
        write_json(Path(folder) / f"{step}.json", {"step": step, "error": message})
    raise SystemExit(1)


def flat_metadata(data: dict[str, Any]) -> dict[str, Any]:
    """The scalar entries of ``data`` (pipeline UIs show them); nested values as JSON text."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, (str, int, float, bool)) or value is None:
            out[key] = value
        else:
            out[key] = json.dumps(value, sort_keys=True, default=str)
    return out
