"""``aidetect quality check`` on a registered model in a real MLflow server: the alias names the judged
version, each logged version's decision rule comes from its registered ``serving/bundle.json``, and the
verdict carries the version's lineage; a logged version without a bundle is skipped with a note."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from aidetect.cli import main
from tests.helpers.quality import MODEL, build, bundle_json

pytestmark = pytest.mark.slow
TAGS = {"dataset_version": "ds-base", "git_commit": "abc", "gate_status": "passed", "threshold": "0.5"}


def _relabel(log_root: Path, name: str, versions: dict[str, str]) -> None:
    """Move the scenario's log under ``name`` with its versions renamed (registered versions start at 1)."""
    for path in list((log_root / MODEL).rglob("*.parquet")):
        df = pq.read_table(path).to_pandas()
        df["model_name"], df["model_version"] = name, df["model_version"].map(versions)
        target = log_root / name / path.relative_to(log_root / MODEL)
        target.parent.mkdir(parents=True, exist_ok=True)
        df.to_parquet(target)


def test_judges_the_aliased_version_with_its_registered_rule(
    mlflow_server_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aidetect import registry

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server_uri)
    name = f"quality-{time.time_ns()}"
    with registry.run(run_name="quality-with-bundle") as run_id:
        registry.log_artifacts(run_id, bundle_json(tmp_path / "bundle"), "serving")
    served = registry.register_version(run_id, name, tags=TAGS).version
    with registry.run(run_name="quality-without-bundle") as bare:
        pass
    other = registry.register_version(bare, name, tags=TAGS).version
    registry.set_alias(name, "production", served)
    s = build(tmp_path, now=datetime.now(UTC))
    _relabel(s.log_root, name, {"3": str(served), "4": str(other)})
    monkeypatch.setenv("AIDETECT_FEEDBACK__LABELS__ROOT", str(s.labels_root))
    out = CliRunner().invoke(
        main,
        ["quality", "check", "--model", f"{name}@production", "--log-uri", str(s.log_root), "--json",
         "--min-labels", "50", "--min-f1", "0.8", "--no-retrain"],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    verdict = json.loads(out.stdout)
    assert verdict["model_version"] == str(served) and verdict["status"] == "ok"
    assert verdict["dataset_version"] == "ds-base"  # from the registered bundle
    (group,) = verdict["groups"]
    assert (group["version"], group["track"], group["n"]) == (str(served), "stable", 60)
    assert any(n.startswith(f"version {other}: skipped") for n in verdict["notes"])
    unknown = CliRunner().invoke(
        main, ["quality", "check", "--model", f"{name}@nope", "--log-uri", str(s.log_root)]
    )
    assert (
        unknown.exit_code != 0 and "no alias 'nope'" in unknown.output and "Traceback" not in unknown.output
    )
