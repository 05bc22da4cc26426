"""Canary analysis against a real Prometheus scraping real ``aidetect serve`` processes under load:
a healthy canary is promoted, a faulty one (chaos knobs: injected 500s and latency) rolled back."""

from __future__ import annotations

import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from aidetect.errors import ServiceUnavailableError
from aidetect.monitoring.canary import NoTrafficError, analyze
from aidetect.monitoring.config import CanaryConfig
from aidetect.serving.client import build_image_request
from tests.helpers.gitops import git, make_repo, remote_branches
from tests.helpers.prometheus import prometheus, wait_for_value
from tests.helpers.servers import free_port, tool
from tests.helpers.serving import aidetect_serve, jpeg, make_bundle

pytestmark = pytest.mark.slow
MODEL = "aidetect"
REQUESTS = 160  # per server; each carries two 32 px JPEGs
IMAGES = [jpeg(32, seed=s) for s in range(16)]


def send(url: str, n: int, workers: int = 6) -> int:
    """``n`` V2 infer requests (binary extension) from ``workers`` threads; returns how many got a 500."""

    def one(i: int) -> int:
        body, headers = build_image_request([IMAGES[i % 16], IMAGES[(i * 7) % 16]], request_id=f"r{i}")
        return httpx.post(
            f"{url}/v2/models/{MODEL}/infer", content=body, headers=headers, timeout=30
        ).status_code

    with ThreadPoolExecutor(workers) as pool:
        codes = list(pool.map(one, range(n)))
    assert set(codes) <= {200, 500}, codes
    return codes.count(500)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory):
    """stable, a healthy canary and a faulty canary (30% injected 500s, +80 ms), all serving the same
    bundle; Prometheus scrapes the stable with each canary as two jobs (``healthy``, ``faulty``)."""
    work = tmp_path_factory.mktemp("canary")
    bundle = str(make_bundle(work / "bundle", name=MODEL))
    faults = {"AIDETECT_SERVING__FAULT_ERROR_RATE": "0.3", "AIDETECT_SERVING__FAULT_DELAY_MS": "80"}
    with ExitStack() as stack:
        urls = {}
        for name, env in (("stable", None), ("healthy", None), ("faulty", faults)):
            urls[name], _ = stack.enter_context(aidetect_serve(bundle, work / name, env=env))
        host = {name: url.removeprefix("http://") for name, url in urls.items()}
        jobs = {
            "healthy": [(host["stable"], {"track": "stable"}), (host["healthy"], {"track": "canary"})],
            "faulty": [(host["stable"], {"track": "stable"}), (host["faulty"], {"track": "canary"})],
        }
        prom = stack.enter_context(prometheus(jobs, work / "prometheus"))
        yield {"prometheus": prom, **urls}


def config(prom: str, job: str, **extra) -> CanaryConfig:
    settings = {"window": "2m", "min_requests": 100, **extra}
    return CanaryConfig(prometheus_url=prom, selector=f'job="{job}"', **settings)


@pytest.fixture(scope="module")
def loaded(fleet: dict) -> dict:
    """A warm-up request per server creates the series; with no traffic since, the analysis refuses.
    Then every server takes its load, and the test waits until Prometheus has scraped all of it."""
    names = ("stable", "healthy", "faulty")
    for name in names:
        send(fleet[name], 1, workers=1)
    for job in ("healthy", "faulty"):
        for track in ("stable", "canary"):
            wait_for_value(
                fleet["prometheus"], f'sum(aidetect_requests_total{{job="{job}",track="{track}"}})', 1
            )
    time.sleep(3)  # a few flat scrapes: the series exist, their increase is 0
    with pytest.raises(NoTrafficError, match="served no requests"):
        analyze(config(fleet["prometheus"], "healthy", window="2s"))
    with ThreadPoolExecutor(3) as pool:
        errors = dict(zip(names, pool.map(lambda n: send(fleet[n], REQUESTS), names), strict=True))
    assert errors["stable"] == errors["healthy"] == 0
    assert 0.15 * REQUESTS < errors["faulty"] < 0.45 * REQUESTS
    for job in ("healthy", "faulty"):
        for track in ("stable", "canary"):
            query = f'sum(aidetect_requests_total{{job="{job}",track="{track}"}})'
            wait_for_value(fleet["prometheus"], query, REQUESTS + 1)
    return fleet


def test_healthy_canary_is_promoted(loaded: dict) -> None:
    verdict = analyze(config(loaded["prometheus"], "healthy"))
    assert verdict.decision == "promote", verdict.reasons
    assert verdict.canary.server_errors == 0 and verdict.canary.requests >= 100
    assert verdict.prediction_shift is not None and verdict.prediction_shift < 0.1


def test_faulty_canary_is_rolled_back_with_reasons(loaded: dict) -> None:
    verdict = analyze(config(loaded["prometheus"], "faulty"))
    assert verdict.decision == "rollback"
    assert verdict.canary.error_rate > 0.1 and verdict.stable.error_rate == 0
    assert any(r.startswith("error rate") for r in verdict.reasons), verdict.reasons
    assert any(r.startswith("p95 latency") for r in verdict.reasons), verdict.reasons
    assert verdict.canary.p95_seconds > verdict.stable.p95_seconds + 0.05


def test_too_little_traffic_holds(loaded: dict) -> None:
    verdict = analyze(config(loaded["prometheus"], "healthy", min_requests=10_000))
    assert verdict.decision == "hold"
    assert "of the 10000 requests needed" in verdict.reasons[0]


def test_unreachable_prometheus_is_a_clear_error() -> None:
    with pytest.raises(ServiceUnavailableError, match="unreachable"):
        analyze(CanaryConfig(prometheus_url=f"http://127.0.0.1:{free_port()}"))


def test_cli_apply_opens_the_rollback_branch(loaded: dict, tmp_path: Path) -> None:
    """`--apply` on a rollback verdict pushes the rollback branch (no MLflow needed: it reads git)."""
    work, bare = make_repo(tmp_path)
    split = work / "manifests/overlays/canary/virtualservice.yaml"
    pin = work / "manifests/overlays/canary/model.yaml"
    # main runs canary v2 with 20% traffic
    split.write_text(
        split.read_text().replace("weight: 100", "weight: 80").replace("weight: 0", "weight: 20")
    )
    pin.write_text(pin.read_text().replace('model-version: "1"', 'model-version: "2"'))
    git(work, "commit", "-q", "-am", "canary v2 at 20%")
    git(work, "push", "-q", "origin", "main")
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_TOKEN"}
    cmd = [tool("aidetect"), "canary", "analyze", "--prometheus", loaded["prometheus"], "--window", "2m"]
    cmd += ["--selector", 'job="faulty"', "--apply", "--repo", str(work)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 4, res.stderr
    assert "decision: rollback" in res.stdout
    assert "pushed branch rollback/canary/aidetect-detector-v2" in res.stdout
    assert remote_branches(bare) == ["main", "rollback/canary/aidetect-detector-v2"]
    rolled = git(
        bare, "show", "rollback/canary/aidetect-detector-v2:manifests/overlays/canary/virtualservice.yaml"
    )
    assert rolled.count("weight: 100") == 2 and rolled.count("weight: 0") == 2
