"""Fixtures shared by every test room: isolated state, real servers on loopback, shared data."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import servers
from tests.helpers.label_studio import LabelStudio

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own AIDETECT_HOME and no inherited tracking URI or datasets root."""
    home = tmp_path / "aidetect-home"
    monkeypatch.setenv("AIDETECT_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("AIDETECT_DATASETS", raising=False)
    return home


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """``../shared/datasets``; tests that need it skip with a clear message when it is absent."""
    from aidetect.paths import shared_datasets as locate

    found = locate()
    if found is None:
        pytest.skip("../shared/datasets is not present on this machine (CI has it)")
    return found


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real moto_server S3 endpoint on loopback, shared by the session."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with servers.moto_s3(log) as url:
        yield url


def point_s3_at(
    monkeypatch: pytest.MonkeyPatch, endpoint: str, key: str = "testing", secret: str = "testing"
) -> None:
    """Point boto3 (and so aidetect.storage) at ``endpoint`` with the given credentials."""
    from aidetect import storage

    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    storage._client.cache_clear()


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point boto3 (and so aidetect.storage) at the loopback S3 server with test credentials."""
    from aidetect import storage

    point_s3_at(monkeypatch, s3_endpoint)
    yield s3_endpoint
    storage._client.cache_clear()


@pytest.fixture
def s3_unreachable(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An S3 endpoint on a closed loopback port, one attempt and a short connect timeout."""
    from aidetect import storage

    monkeypatch.setenv("AIDETECT_STORAGE__MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AIDETECT_STORAGE__CONNECT_TIMEOUT_S", "1")
    endpoint = f"http://127.0.0.1:{servers.free_port()}"
    point_s3_at(monkeypatch, endpoint)
    yield endpoint
    storage._client.cache_clear()


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudio]:
    """A real Label Studio server (``.venv-labelstudio``) on loopback, shared by the session: ``.url``,
    ``.token``. Skipped only where the venv is absent locally; CI (``make test``) installs it."""
    from tests.helpers import label_studio as ls

    if not ls.available():
        if os.environ.get("CI"):
            pytest.fail(f"{ls.BINARY} is missing: `make labelstudio-venv` should have installed it")
        pytest.skip(f"Label Studio is not installed ({ls.BINARY}): run `make labelstudio-venv`")
    with ls.label_studio_server(tmp_path_factory.mktemp("label-studio")) as server:
        yield server


@pytest.fixture(scope="session")
def mlflow_server_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` process on loopback, shared by the session."""
    with servers.mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as uri:
        yield uri
