"""Start real servers on loopback for integration tests and stop them afterwards."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until it answers (any status < 500) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}: {url}")
        try:
            if httpx.get(url, timeout=2.0).status_code < 500:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not come up in {timeout}s: {last}")


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
    """Run ``cmd`` until ``url`` answers; yield the process; terminate it on exit."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            cmd,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        try:
            try:
                wait_http(url, timeout=timeout, proc=proc)
            except Exception as exc:
                raise RuntimeError(
                    f"{exc}\n--- {log} ---\n{log.read_text(errors='replace')[-3000:]}"
                ) from None
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


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
