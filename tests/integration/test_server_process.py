"""The one way to start a server and wait for it (``aidetect.serving.client``: ``started``, ``serving``),
used by ``aidetect demo``, bench/close_loop.py and the tests' ``running``: real processes on loopback."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import pytest

from aidetect.errors import ServiceUnavailableError
from aidetect.serving.client import V2Client, free_port, serving, started
from tests.helpers import servers
from tests.helpers.serving import solid, tiny_bundle


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_server_that_dies_is_an_error_naming_its_log(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "server.log"
    cmd = [sys.executable, "-c", "import sys; print('cannot open the model'); sys.exit(3)"]
    url = f"http://127.0.0.1:{free_port()}/v2/health/ready"
    with pytest.raises(ServiceUnavailableError, match="exited with code 3") as err, started(cmd, url, log):
        pytest.fail("a dead server is never ready")
    assert str(log) in str(err.value) and "cannot open the model" in log.read_text()


def test_a_server_not_ready_in_time_is_stopped_and_named(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    cmd = [sys.executable, "-c", f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
           "time.sleep(120)"]  # fmt: skip
    url = f"http://127.0.0.1:{free_port()}/"
    slow = started(cmd, url, tmp_path / "slow.log", timeout=1, stop_timeout=5)
    with pytest.raises(ServiceUnavailableError, match="was not ready after") as err, slow:
        pass
    assert str(tmp_path / "slow.log") in str(err.value)
    assert _gone(int(pid_file.read_text())), "a server that never came up must not be left running"


def test_ready_means_200_unless_the_caller_says_otherwise(tmp_path: Path) -> None:
    """``python -m http.server`` answers 404 for the readiness route: not ready for ``aidetect serve``'s
    rule, ready for the tests' generic one (any status under 500)."""
    port = free_port()
    cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "-d", str(tmp_path)]
    url = f"http://127.0.0.1:{port}/v2/health/ready"
    with (
        pytest.raises(ServiceUnavailableError, match="last status 404"),
        started(cmd, url, tmp_path / "a.log", timeout=3),
    ):
        pass
    with started(cmd, url, tmp_path / "b.log", ready=lambda status: status < 500, timeout=60) as proc:
        assert httpx.get(url).status_code == 404
    assert proc.returncode is not None, "stopped when the block ended"
    with servers.running(cmd, url, tmp_path / "c.log") as proc:
        assert proc.poll() is None


def test_serving_runs_aidetect_serve_until_the_block_ends(tmp_path: Path) -> None:
    bundle = tiny_bundle(tmp_path / "bundle")
    with serving(str(bundle), tmp_path / "serve.log", timeout=180) as url:
        client = V2Client(url)
        (pred,) = client.predict(client.default_model(), [solid((0, 0, 255))])
        assert pred.label == "FAKE"
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{url}/v2/health/ready", timeout=2)


def test_serving_a_model_that_cannot_load_names_the_log(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    missing = serving(str(tmp_path / "no-such-bundle"), log, timeout=180)
    with pytest.raises(ServiceUnavailableError, match="exited with code") as err, missing:
        pytest.fail("never ready")
    assert str(log) in str(err.value) and "no-such-bundle" in log.read_text()
