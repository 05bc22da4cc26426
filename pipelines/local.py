"""Run a pipeline on this machine with ``kfp.local``'s SubprocessRunner (no Docker, no cluster).

Each step runs as its own Python process from this interpreter, exactly the component code a cluster runs
(the image named in the spec is not used locally). A failing step stops the run: no later step starts, and
the error names the step and its one-line reason, recorded by :func:`aidetect.flows.steprun.run_step`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aidetect import paths
from aidetect.errors import AidetectError, ConfigError
from aidetect.flows.steprun import FAILURES_ENV
from pipelines.compile import BUILDERS
from pipelines.config import PipelineConfig
from pipelines.params import resolve_arguments

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class PipelineStepError(AidetectError):
    """A step of a local pipeline run failed; the message names the step."""


@dataclass
class LocalRun:
    """The outcome of a local run: where its files are and what each step produced."""

    name: str
    run_dir: Path
    log_path: Path
    seconds: float
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)

    def output(self, step: str, artifact: str) -> dict[str, Any]:
        """``{"uri": ..., "metadata": {...}}`` of artifact ``artifact`` of ``step``."""
        return self.steps[step]["artifacts"][artifact]

    def parameter(self, step: str, name: str = "Output") -> Any:
        return self.steps[step]["parameters"].get(name)


def _read_steps(pipeline_root: Path) -> dict[str, dict[str, Any]]:
    """Collect each finished task's ``executor_output.json`` under the run's pipeline root."""
    steps: dict[str, dict[str, Any]] = {}
    for out in sorted(pipeline_root.glob("*/*/executor_output.json"), key=lambda p: p.stat().st_mtime):
        data = json.loads(out.read_text())
        arts = {}
        for name, entry in (data.get("artifacts") or {}).items():
            first = (entry.get("artifacts") or [{}])[0]
            arts[name] = {"uri": first.get("uri", ""), "metadata": first.get("metadata", {})}
        steps[out.parent.name] = {"parameters": data.get("parameterValues", {}), "artifacts": arts}
    return steps


_EXC_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Exit)\b.*)$")


def _failure(failures_dir: Path, message: str, log_path: Path) -> str:
    """The first recorded step failure as ``step 'x' failed: reason``; else kfp's task name and the
    last exception line of the log (a step that crashed before :func:`run_step` could record it)."""
    records = sorted(failures_dir.glob("*.json"), key=lambda p: p.stat().st_mtime)
    if records:
        rec = json.loads(records[0].read_text())
        return f"step '{rec['step']}' failed: {rec['error']}"
    found = re.search(r"Inner task failed: '([^']+)'", _ANSI.sub("", message))
    step = found.group(1) if found else "?"
    lines = [m.group(1) for m in map(_EXC_LINE.match, log_path.read_text(errors="replace").splitlines()) if m]
    return f"step '{step}' failed" + (f": {lines[-1].strip()}" if lines else "")


@contextlib.contextmanager
def _env(values: dict[str, str]):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def new_run_dir(name: str, runs_root: str | Path | None = None) -> Path:
    """A fresh folder ``<home>/pipeline-runs/<name>-<UTC time>[-n]``."""
    root = Path(runs_root) if runs_root else paths.home() / "pipeline-runs"
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    for n in range(1000):
        candidate = root / (f"{name}-{stamp}" + (f"-{n}" if n else ""))
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise AidetectError(f"could not create a run folder under {root}")


def run_local(
    name: str,
    cfg: PipelineConfig,
    arguments: dict[str, Any],
    *,
    runs_root: str | Path | None = None,
    echo: bool = False,
) -> LocalRun:
    """Run pipeline ``name`` locally; raise :class:`PipelineStepError` naming the step that failed."""
    import kfp.local

    if name not in BUILDERS:
        raise ConfigError(f"unknown pipeline {name!r} (known: {', '.join(BUILDERS)})")
    pipeline = BUILDERS[name](cfg)
    args = resolve_arguments(pipeline, arguments)
    run_dir = new_run_dir(name, runs_root)
    failures = run_dir / "failures"
    failures.mkdir()
    log_path = run_dir / "pipeline.log"
    pipeline_root = run_dir / "artifacts"
    kfp.local.init(
        runner=kfp.local.SubprocessRunner(use_venv=False),
        pipeline_root=str(pipeline_root),
        raise_on_error=True,
    )
    start = time.monotonic()
    env = {FAILURES_ENV: str(failures), "AIDETECT_HOME": str(paths.home()), "PYTHONUNBUFFERED": "1"}
    with open(log_path, "w") as log, _env(env), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*custom or non-Python base image.*")
        warnings.filterwarnings("ignore", message=".*have no effect in the current local runner.*")
        sink = contextlib.nullcontext() if echo else contextlib.redirect_stdout(log)
        try:
            with sink, contextlib.redirect_stderr(log):
                pipeline(**args)
        except RuntimeError as exc:
            log.flush()
            reason = _failure(failures, str(exc), log_path)
            raise PipelineStepError(f"pipeline {pipeline.name} stopped: {reason} (log: {log_path})") from None
    run = LocalRun(name, run_dir, log_path, time.monotonic() - start, _read_steps(pipeline_root))
    summary = {
        "pipeline": pipeline.name,
        "arguments": args,
        "seconds": round(run.seconds, 2),
        "steps": run.steps,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return run
