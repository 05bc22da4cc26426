"""The MLflow adapter against a real ``mlflow server`` on loopback and the embedded SQLite default."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from aidetect import registry
from aidetect.errors import DataError, ServiceUnavailableError
from tests.helpers.servers import free_port

LINEAGE = {
    "dataset_version": "ds-abc123",
    "git_commit": "deadbeef",
    "gate_status": "passed",
    "threshold": "0.5",
}


def _run_with_checkpoint(tmp_path: Path) -> str:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "model.pt").write_bytes(b"weights")
    run_id = registry.start_run("reg-test", run_name="unit")
    registry.log_params(run_id, {"train": {"lr": 0.001, "arch": "compact"}})
    registry.log_metrics(run_id, {"val_f1": 0.9}, step=1)
    registry.log_artifacts(run_id, ckpt, registry.CHECKPOINT_PATH)
    registry.end_run(run_id)
    return run_id


def _exercise_registry(tmp_path: Path, name: str) -> None:
    run_id = _run_with_checkpoint(tmp_path)
    assert registry.resolve_alias(name, "candidate") is None  # model does not exist yet
    v1 = registry.register_version(run_id, name, tags=LINEAGE, description="first")
    assert v1.version == "1" and v1.aliases == ("candidate",)
    assert v1.tags["run_id"] == run_id and v1.tags["dataset_version"] == "ds-abc123"
    assert v1.source.endswith("/checkpoint")
    assert registry.gate_passed(name, "1")

    v2 = registry.register_version(run_id, name, tags={**LINEAGE, "gate_status": "failed"})
    assert registry.resolve_alias(name, "candidate") == "2"  # the alias moved
    assert not registry.gate_passed(name, "@candidate")
    registry.set_alias(name, "production", v1.version)
    assert registry.get_version(name, "production").version == "1"
    assert registry.resolve_alias(name, "canary") is None
    assert [v.version for v in registry.list_versions(name)] == ["2", "1"]

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "bundle.json").write_text(json.dumps({"model_version": v2.version}))
    registry.log_version_artifacts(name, v2.version, bundle, "serving")
    got = registry.download_artifacts(name, "candidate", "serving", tmp_path / "dl")
    assert json.loads((got / "bundle.json").read_text()) == {"model_version": "2"}
    ckpt = registry.download_artifacts(name, "1", "checkpoint/model.pt", tmp_path / "dl2")
    assert ckpt.read_bytes() == b"weights"

    with pytest.raises(DataError, match="alias nope"):
        registry.get_version(name, "nope")


def test_registry_against_real_mlflow_server(
    mlflow_server_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server_uri)
    _exercise_registry(tmp_path, f"detector-{time.time_ns()}")


def test_registry_embedded_sqlite_default(tmp_path: Path) -> None:
    assert registry.client().tracking_uri.startswith("sqlite:///")
    _exercise_registry(tmp_path, "detector")


def test_registration_needs_lineage_and_leaves_nothing(
    mlflow_server_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server_uri)
    name = f"detector-{time.time_ns()}"
    run_id = _run_with_checkpoint(tmp_path)
    with pytest.raises(DataError, match="git_commit"):
        registry.register_version(
            run_id, name, tags={"dataset_version": "x", "gate_status": "passed", "threshold": "0.5"}
        )
    assert registry.list_versions(name) == []


def test_unreachable_tracking_server_fails_clearly_after_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AIDETECT_REGISTRY__RETRIES", "3")
    monkeypatch.setenv("AIDETECT_REGISTRY__BACKOFF_S", "0.05")
    start = time.monotonic()
    with pytest.raises(ServiceUnavailableError, match=r"unreachable \(health check, 3 attempts\)"):
        registry.start_run("x")
    with pytest.raises(ServiceUnavailableError, match="unreachable"):
        registry.get_version("detector", "production")
    assert time.monotonic() - start >= 0.15  # backed off between attempts (0.05 + 0.1, twice)


def test_failed_alias_leaves_no_half_registered_version(tmp_path: Path) -> None:
    from aidetect.errors import AidetectError

    run_id = _run_with_checkpoint(tmp_path)
    with pytest.raises(AidetectError, match="must not be a number"):
        registry.register_version(run_id, "detector", tags=LINEAGE, alias="42")
    assert registry.list_versions("detector") == []
    assert registry.register_version(run_id, "detector", tags=LINEAGE).version  # the name still works
