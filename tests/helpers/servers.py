"""Start real servers on loopback for integration tests and stop them afterwards."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from aidetect.errors import ServiceUnavailableError
from aidetect.serving.client import free_port, started, wait_ready

__all__ = ["free_port", "mlflow_server", "moto_s3", "running", "tool", "wait_http"]

VENV_BIN = Path(sys.executable).parent


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until it answers (any status < 500) or ``timeout`` passes."""
    wait_ready(url, proc, timeout, ready=lambda status: status < 500, interval=0.2)


def tool(name: str) -> str:
    """Path of a console script from this venv (or PATH)."""
    cand = VENV_BIN / name
    if cand.exists():
        return str(cand)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(name)
    return found


@contextlib.contextmanager
def running(
    cmd: list[str], url: str, log: Path, env: dict[str, str] | None = None, timeout: float = 90.0
) -> Iterator[subprocess.Popen]:
    """Run ``cmd`` until ``url`` answers (any status < 500); yield the process; terminate it on exit.
    A server that dies or never answers fails with the tail of its log."""
    with contextlib.ExitStack() as stack:
        try:
            proc = stack.enter_context(
                started(cmd, url, log, env=env, timeout=timeout, ready=lambda s: s < 500, interval=0.2)
            )
        except ServiceUnavailableError as exc:
            raise RuntimeError(f"{exc}\n--- {log} ---\n{log.read_text(errors='replace')[-3000:]}") from None
        yield proc


@contextlib.contextmanager
def moto_s3(log: Path) -> Iterator[str]:
    """A real S3-compatible HTTP server (moto_server) on loopback; yields its endpoint URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running([tool("moto_server"), "-H", "127.0.0.1", "-p", str(port)], url, log):
        yield url


@contextlib.contextmanager
def mlflow_server(workdir: Path) -> Iterator[str]:
    """A real ``mlflow server`` (SQLite backend, local artifacts) on loopback; yields its URI."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [
        tool("mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{workdir / 'mlflow.db'}",
        "--artifacts-destination",
        str(workdir / "artifacts"),
        "--workers",
        "1",
    ]
    with running(cmd, f"{url}/health", workdir / "mlflow.log", timeout=120):
        yield url
