"""A real Prometheus server (Debian's /usr/bin/prometheus) on loopback for tests."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.helpers import servers


def prometheus_binary() -> str:
    found = shutil.which("prometheus") or (
        "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None
    )
    if not found:
        pytest.skip("prometheus is not installed (apt-get install prometheus; .ci/run does)")
    return found


@contextlib.contextmanager
def prometheus(
    jobs: dict[str, list[tuple[str, dict[str, str]]]], workdir: Path, interval: str = "1s"
) -> Iterator[str]:
    """Run Prometheus scraping ``{job: [(host:port, labels), ...]}`` every ``interval``; yield its URL."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = {
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {
                "job_name": job,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [target], "labels": labels} for target, labels in targets],
            }
            for job, targets in jobs.items()
        ],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = servers.free_port()
    cmd = [
        prometheus_binary(),
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1h",
        "--log.level=warn",
    ]
    url = f"http://127.0.0.1:{port}"
    with servers.running(cmd, f"{url}/-/ready", workdir / "prometheus.log", timeout=60):
        yield url


def wait_for_value(url: str, promql: str, expected: float, timeout: float = 30.0) -> None:
    """Poll until the instant query ``promql`` reaches ``expected`` (the scrapes have caught up)."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        result = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=5).json()["data"][
            "result"
        ]
        seen = float(result[0]["value"][1]) if result else None
        if seen is not None and seen >= expected:
            return
        time.sleep(0.5)
    raise TimeoutError(f"{promql} stayed at {seen}, expected {expected}")
