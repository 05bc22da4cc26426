"""What a promotion pull request says: the version, its gate report, how its metrics differ from the
version it replaces, and its lineage. Everything is read from the registry (aidetect.registry)."""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from aidetect import registry
from aidetect.errors import AidetectError, DataError
from aidetect.gitops.overlays import Pin

GATE_REPORT = "reports/gate_report.md"
LINEAGE = ("dataset_version", "git_commit", "run_id", "gate_status", "threshold")


@dataclass(frozen=True)
class VersionFacts:
    """A registered version with its run's metrics and artifact folder."""

    name: str
    version: int
    tags: dict[str, str]
    metrics: dict[str, float]
    artifact_uri: str
    gate_report: str = field(default="", repr=False)


def version_facts(name: str, version: int, with_report: bool = True) -> VersionFacts:
    """Read one version from the registry; DataError naming it when it does not exist."""
    try:
        info = registry.get_version(name, str(version))
    except DataError:
        raise DataError(f"model {name} has no version {version} in the registry") from None
    if not info.run_id:
        raise DataError(f"model {name} version {version} has no training run (lineage missing)")
    run = registry.get_run(info.run_id)
    report = _gate_report(name, version) if with_report else ""
    return VersionFacts(
        name=name,
        version=int(info.version),
        tags=dict(info.tags),
        metrics=dict(run.data.metrics),
        artifact_uri=str(run.info.artifact_uri).rstrip("/"),
        gate_report=report,
    )


def _gate_report(name: str, version: int) -> str:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # keep the CLI's stderr for errors
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = registry.download_artifacts(name, str(version), GATE_REPORT, tmp)
            return Path(path).read_text()
        except (AidetectError, OSError) as exc:
            return f"_No gate report artifact ({GATE_REPORT}): {exc}_"
        except Exception as exc:  # MLflow raises its own types for a missing artifact
            return f"_No gate report artifact ({GATE_REPORT}): {type(exc).__name__}_"


def metric_table(new: VersionFacts, old: VersionFacts | None) -> str:
    """Markdown table of the new version's metrics against the replaced one's."""
    if not new.metrics:
        return "_The run logged no metrics._"
    if old is None:
        rows = [f"| {k} | {_fmt(v)} |" for k, v in sorted(new.metrics.items())]
        return "\n".join(["| metric | new |", "|---|---:|", *rows])
    rows = []
    for key in sorted(set(new.metrics) | set(old.metrics)):
        a, b = old.metrics.get(key), new.metrics.get(key)
        delta = _fmt(b - a, signed=True) if a is not None and b is not None else "n/a"
        rows.append(f"| {key} | {_fmt(a)} | {_fmt(b)} | {delta} |")
    head = [f"| metric | v{old.version} (replaced) | v{new.version} (new) | change |", "|---|---:|---:|---:|"]
    return "\n".join(head + rows)


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def pull_request_body(
    env: str, new: VersionFacts, replaced: Pin | None, old: VersionFacts | None, uri: str, extra: str = ""
) -> str:
    """The PR body: what changes, gate report, metric differences, lineage (and any extra section)."""
    was = f"v{replaced.version}" if replaced else "nothing"
    lineage = "\n".join(f"| {k} | `{new.tags.get(k, '(missing)')}` |" for k in LINEAGE)
    parts = [
        f"## Promote {new.name} v{new.version} to {env}",
        f"{env} runs {was} today; after this merges Argo CD deploys v{new.version}:",
        f"`{uri}`",
        "Roll back by reverting this pull request.",
        extra,
        "## Gate report",
        new.gate_report or "_not requested_",
        "## Metrics against the version it replaces",
        metric_table(new, old),
        "## Lineage",
        "| tag | value |\n|---|---|\n" + lineage,
        f"Run artifacts: `{new.artifact_uri}`",
    ]
    return "\n\n".join(p for p in parts if p)
