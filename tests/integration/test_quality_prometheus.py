"""Live quality through the real metrics path: ``aidetect quality check --pushgateway`` pushes to a real
Pushgateway, a real Prometheus scrapes it (``honor_labels``, as in the cluster) with the generated rules,
and PromQL answers: the live F1 per version and track, the dashboard's live-quality queries, and the
AidetectModelDegraded alert firing for the degraded track only (the canary has too few labels)."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner

from aidetect.cli import main
from aidetect.monitoring import alerts, dashboards, promql
from tests.helpers.prometheus import prometheus_binary
from tests.helpers.quality import MODEL, build, bundle_json
from tests.helpers.servers import free_port, running

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def _pushgateway(work: Path) -> Iterator[str]:
    binary = shutil.which("prometheus-pushgateway")
    if not binary:
        pytest.skip("prometheus-pushgateway is not installed (Debian package; .ci/run installs it)")
    url = f"http://127.0.0.1:{free_port()}"
    # Debian's build persists to /var/lib/prometheus by default: keep each run's pushes to itself
    cmd = [binary, f"--web.listen-address={url.removeprefix('http://')}", "--log.level=warn",
           f"--persistence.file={work / 'pushgateway.data'}"]  # fmt: skip
    with running(cmd, f"{url}/-/ready", work / "pushgateway.log", timeout=30):
        yield url


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(Pushgateway URL, Prometheus URL), Prometheus evaluating the generated rules every second."""
    work = tmp_path_factory.mktemp("quality-prometheus")
    binary = prometheus_binary()
    with _pushgateway(work) as gateway:
        groups = alerts.rule_groups()
        for group in groups:
            group["interval"] = "1s"
        (work / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(work / "rules.yaml")],
            "scrape_configs": [{"job_name": "pushgateway", "honor_labels": True,
                                "static_configs": [{"targets": [gateway.removeprefix("http://")]}]}],
        }  # fmt: skip
        (work / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        url = f"http://127.0.0.1:{free_port()}"
        cmd = [binary, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'tsdb'}",
               f"--web.listen-address={url.removeprefix('http://')}", "--log.level=warn"]  # fmt: skip
        with running(cmd, f"{url}/-/ready", work / "prometheus.log", timeout=60):
            yield gateway, url


def _eventually(prom: str, expr: str, timeout: float = 40.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        body = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=10).json()
        assert body["status"] == "success", body
        if body["data"]["result"] or time.monotonic() > deadline:
            return body["data"]["result"]
        time.sleep(0.5)


@pytest.fixture(scope="module")
def pushed(stack: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    """Run the check once (v3 stable degraded over 60 labels, v4 canary 20 labels); the Prometheus URL."""
    gateway, prom = stack
    tmp = tmp_path_factory.mktemp("quality-check")
    scenario = build(tmp, now=datetime.now(UTC))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIDETECT_HOME", str(tmp / "home"))
        mp.setenv("AIDETECT_FEEDBACK__LABELS__ROOT", str(scenario.labels_root))
        out = CliRunner().invoke(
            main,
            ["quality", "check", "--model", f"{MODEL}/3", "--log-uri", str(scenario.log_root), "--bundle",
             str(bundle_json(tmp / "bundle")), "--min-f1", "0.9", "--min-labels", "50", "--no-retrain",
             "--pushgateway", gateway],
        )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "DEGRADED" in out.stderr
    return prom


def test_prometheus_answers_the_live_metrics(pushed: str) -> None:
    f1 = _eventually(pushed, f'aidetect_live_f1{{model="{MODEL}", version="3", track="stable"}}')
    assert len(f1) == 1 and float(f1[0]["value"][1]) == pytest.approx(0.8421, abs=1e-4)
    assert f1[0]["metric"]["job"] == "aidetect-quality"  # the pushed group, kept by honor_labels
    labels = _eventually(pushed, f'aidetect_live_labels{{model="{MODEL}"}}')
    assert {(r["metric"]["version"], r["metric"]["track"], float(r["value"][1])) for r in labels} == {
        ("3", "stable", 60.0),
        ("4", "canary", 20.0),
    }
    recall = _eventually(pushed, f'aidetect_live_recall{{model="{MODEL}", version="3", class="FAKE"}}')
    assert float(recall[0]["value"][1]) == pytest.approx(0.8)


LIVE = [q for name in ("live_f1", "live_accuracy", "live_labels") for q in dashboards.MODEL[name]]


@pytest.mark.parametrize("query", LIVE, ids=[q.expr[:48] for q in LIVE])
def test_the_dashboard_live_quality_queries_return_data(pushed: str, query: dashboards.Query) -> None:
    result = _eventually(pushed, promql.concrete(query.expr))
    assert {(r["metric"]["version"], r["metric"]["track"]) for r in result} == {
        ("3", "stable"),
        ("4", "canary"),
    }


def test_the_degradation_alert_fires_for_the_degraded_track_only(pushed: str) -> None:
    firing = _eventually(pushed, 'ALERTS{alertname="AidetectModelDegraded", alertstate="firing"}')
    assert [(r["metric"]["version"], r["metric"]["track"]) for r in firing] == [("3", "stable")]


def test_canary_analysis_reads_the_live_quality_of_the_served_versions(
    stack: tuple[str, str], pushed: str
) -> None:
    from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

    from aidetect.monitoring.canary import Prometheus, live_quality
    from aidetect.monitoring.config import CanaryConfig

    gateway, prom = stack
    reg = CollectorRegistry()  # what the two predictors expose: stable serves v3, canary v4
    info = Gauge("aidetect_model_info", "served model", ["model", "version", "track"], registry=reg)
    info.labels(MODEL, "3", "stable").set(1)
    info.labels(MODEL, "4", "canary").set(1)
    push_to_gateway(gateway.removeprefix("http://"), job="predictors", registry=reg)
    _eventually(prom, 'aidetect_model_info{track="canary"}')
    cfg = CanaryConfig(prometheus_url=prom, selector=f'model="{MODEL}"')
    stable = live_quality(Prometheus(prom), cfg, "stable")
    canary = live_quality(Prometheus(prom), cfg, "canary")
    assert stable is not None and stable.degraded and stable.labels == 60 and stable.min_f1 == 0.9
    assert canary is not None and not canary.degraded and canary.f1 == 1.0 and canary.labels == 20
    reg2 = CollectorRegistry()
    Gauge("aidetect_model_info", "served model", ["model", "version", "track"], registry=reg2).labels(
        MODEL, "5", "canary"
    ).set(1)
    # the canary moved on to v5 (replacing the pushed group): v5 has no labels, so no live criterion
    push_to_gateway(gateway.removeprefix("http://"), job="predictors", registry=reg2)
    deadline = time.monotonic() + 30
    while live_quality(Prometheus(prom), cfg, "canary") is not None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert live_quality(Prometheus(prom), cfg, "canary") is None
