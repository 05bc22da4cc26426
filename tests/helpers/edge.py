"""A real ``aidetect serve`` for the hostile-client tests, with its process (for RSS and signals)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import servers
from tests.helpers.serving import _wait_tcp


@dataclass
class Served:
    url: str
    grpc: str
    pid: int
    log: Path

    def rss_kb(self, field: str = "VmRSS") -> int:
        """``VmRSS`` (now) or ``VmHWM`` (peak) of the server process, in kB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)

    def reset_peak(self) -> None:
        """Start a new VmHWM measurement (``/proc/<pid>/clear_refs``: 5 resets the peak RSS)."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def serve(bundle: Path, workdir: Path, env: dict[str, str] | None = None, *args: str) -> Iterator[Served]:
    """``aidetect serve`` on free ports with ``AIDETECT_SERVING__*`` settings from ``env``."""
    http, grpc = servers.free_port(), servers.free_port()
    cmd = [
        sys.executable, "-m", "aidetect.cli", "serve", "--model", str(bundle),
        "--http-port", str(http), "--grpc-port", str(grpc), *args,
    ]  # fmt: skip
    url = f"http://127.0.0.1:{http}"
    log = workdir / f"serve-{http}.log"
    full_env = {"PYTHONUNBUFFERED": "1", **(env or {})}
    with servers.running(cmd, f"{url}/v2/health/ready", log, env=full_env, timeout=120) as proc:
        _wait_tcp(grpc)
        yield Served(url, f"127.0.0.1:{grpc}", proc.pid, log)


def post_json(url: str, doc: object, token: str | None = None, **kw: Any) -> httpx.Response:
    """POST ``doc`` as JSON (stdlib ``json``: it nests deeper than orjson writes) with a bearer token."""
    headers = {"content-type": "application/json", **kw.pop("headers", {})}
    if token:
        headers["authorization"] = f"Bearer {token}"
    kw.setdefault("timeout", 60)
    return httpx.post(url, content=json.dumps(doc).encode(), headers=headers, **kw)


def environ(**settings: object) -> dict[str, str]:
    """``AIDETECT_SERVING__<FIELD>`` variables for ``settings`` (values as YAML scalars)."""
    return {
        f"AIDETECT_SERVING__{k.upper()}": str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in settings.items()
    }
