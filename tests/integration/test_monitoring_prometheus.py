"""A real Prometheus scrapes a live ``aidetect serve`` under a short load: the dashboards' main queries
return data, the recording rules evaluate, and a fault-injected error rate puts the error alert in
pending state. Everything on loopback, free ports, temporary storage, 1 s scrape interval."""

from __future__ import annotations

import contextlib
import http.server
import io
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from aidetect.data.features import FEATURE_COLUMNS
from aidetect.errors import AidetectError
from aidetect.monitoring import alerts, dashboards, promql
from aidetect.serving.client import V2Client, build_image_request
from tests.helpers.prometheus import wait_for_value
from tests.helpers.servers import free_port, running
from tests.helpers.serving import aidetect_serve, jpeg, make_bundle

pytestmark = pytest.mark.slow

MODEL = "detector"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


@dataclass
class Stack:
    serve_url: str
    prom_url: str


def _prometheus_config(folder: Path, target: str, drift_target: str) -> Path:
    groups = alerts.rule_groups()
    for group in groups:
        group["interval"] = "1s"  # evaluate rules as fast as the test scrapes
    (folder / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(folder / "rules.yaml")],
        "scrape_configs": [
            {
                "job_name": "aidetect-predictor",
                "static_configs": [
                    {"targets": [target], "labels": {"track": "stable", "namespace": "aidetect-test"}}
                ],
            },
            {  # as Prometheus scrapes the Pushgateway the drift check pushes to
                "job_name": "aidetect-drift",
                "honor_labels": True,
                "static_configs": [{"targets": [drift_target]}],
            },
        ],
    }
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not Path(PROMETHEUS).exists():
        pytest.skip("prometheus is not installed (Debian package prometheus; CI installs it)")
    work = tmp_path_factory.mktemp("prometheus-stack")
    bundle = make_bundle(work / "bundle", name=MODEL)
    fault = {"AIDETECT_SERVING__FAULT_ERROR_RATE": "0.3"}  # a visible error rate for the error panels/alerts
    with aidetect_serve(str(bundle), work, env=fault) as (serve_url, _), _drift_exposition() as drift_target:
        port = free_port()
        config = _prometheus_config(work, serve_url.removeprefix("http://"), drift_target)
        cmd = [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={work / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1h",
        ]
        prom_url = f"http://127.0.0.1:{port}"
        with running(cmd, f"{prom_url}/-/ready", work / "prometheus.log", timeout=60):
            stop, sent = threading.Event(), [0]
            load = threading.Thread(target=_load, args=(serve_url, stop, sent), daemon=True)
            load.start()
            try:
                yield Stack(serve_url, prom_url)
            finally:
                stop.set()
                load.join(30)
            assert sent[0] >= 10


@contextlib.contextmanager
def _drift_exposition() -> Iterator[str]:
    """Serve the metrics of a real drift check (a shifted window) on /metrics; yield host:port."""
    from prometheus_client import generate_latest

    from aidetect.monitoring.config import DriftConfig
    from aidetect.monitoring.drift import compare
    from aidetect.monitoring.exposition import drift_registry

    rng = np.random.default_rng(0)
    ref = pd.DataFrame(rng.normal(0.5, 0.1, (400, len(FEATURE_COLUMNS))), columns=FEATURE_COLUMNS)
    cur = pd.DataFrame(rng.normal(0.7, 0.1, (300, len(FEATURE_COLUMNS))), columns=FEATURE_COLUMNS)
    result, _ = compare(ref, cur, DriftConfig(min_rows=100, min_reference_rows=100))
    body = generate_latest(drift_registry(result, MODEL, "7", last_trigger=time.time(), launches=1))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def _load(url: str, stop: threading.Event, counter: list[int]) -> None:
    """Bounded load until ``stop``: batches of images plus a corrupt one, ~10 requests a second."""
    client = V2Client(url)
    good = [jpeg(48, seed=i) for i in range(4)]
    big = io.BytesIO()
    Image.new("RGB", (300, 200), (200, 30, 30)).save(big, "PNG")
    body, headers = build_image_request([b"not an image"])
    while not stop.is_set() and counter[0] < 5000:
        with contextlib.suppress(AidetectError):  # the injected faults answer 500; that is the point
            client.predict(MODEL, [*good, big.getvalue()])
        httpx.post(f"{url}/v2/models/{MODEL}/infer", content=body, headers=headers, timeout=10)
        counter[0] += 2
        stop.wait(0.1)


def _query(prom_url: str, expr: str) -> list[dict]:
    r = httpx.get(f"{prom_url}/api/v1/query", params={"query": expr}, timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def _eventually(prom_url: str, expr: str, timeout: float = 40.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        result = _query(prom_url, expr)
        if result or time.monotonic() > deadline:
            return result
        time.sleep(1.0)


MAIN = [q for q in dashboards.queries() if q.main]


def test_there_are_main_queries_for_every_serving_concern() -> None:
    joined = " ".join(q.expr for q in MAIN)
    for metric in ("aidetect_requests_total", "aidetect_request_duration_seconds_bucket",
                   "aidetect_predictions_total", "aidetect_fake_probability_bucket",
                   "aidetect_model_info", "process_cpu_seconds_total"):  # fmt: skip
        assert metric in joined, metric


@pytest.mark.parametrize("query", MAIN, ids=[q.legend or q.expr[:40] for q in MAIN])
def test_dashboard_main_queries_return_data(stack: Stack, query: dashboards.Query) -> None:
    expr = promql.concrete(query.expr, rate="30s")
    result = _eventually(stack.prom_url, expr)
    assert result, f"no data for {expr}"
    if "histogram_quantile" in expr:
        assert all(0 < float(r["value"][1]) < 10 for r in result), result
    if "by (track)" in expr:
        assert {r["metric"].get("track") for r in result} == {"stable"}


def test_recording_rules_and_error_alert_follow_the_injected_faults(stack: Stack) -> None:
    # Half the load is corrupt images (4xx); 30% of the rest fail by design, so the ratio is ~0.15.
    # With 300 requests the chance of falling outside (0.05, 0.6) is far below one in a million.
    wait_for_value(stack.prom_url, "sum(aidetect_requests_total)", 300, timeout=90)
    time.sleep(2.0)  # one more rule evaluation after the scrape that crossed the threshold
    ratio = _eventually(stack.prom_url, "aidetect:server_error_ratio:rate5m")
    assert ratio and {r["metric"]["track"] for r in ratio} == {"stable"}
    assert 0.05 < float(ratio[0]["value"][1]) < 0.6
    assert _eventually(stack.prom_url, "aidetect:request_latency_p95:rate5m")
    pending = _eventually(stack.prom_url, 'ALERTS{alertname="AidetectHighErrorRate"}')
    assert pending and pending[0]["metric"]["alertstate"] in {"pending", "firing"}
    assert not _query(stack.prom_url, 'ALERTS{alertname="AidetectPredictorDown"}')
    rejected = _eventually(stack.prom_url, promql.concrete(promql.rejected_per_second(), rate="30s"))
    assert {r["metric"]["reason"] for r in rejected}  # the corrupt images were refused and counted


DRIFT_PANEL_NAMES = ("drift_share", "drift_detected", "top_features", "check_age", "retrain_launches")
DRIFT_PANELS = [q for name in DRIFT_PANEL_NAMES for q in dashboards.DATA[name]]


@pytest.mark.parametrize("query", DRIFT_PANELS, ids=[q.expr[:40] for q in DRIFT_PANELS])
def test_data_dashboard_queries_return_drift_metrics(stack: Stack, query: dashboards.Query) -> None:
    result = _eventually(stack.prom_url, promql.concrete(query.expr))
    assert result, query.expr
    if "topk" in query.expr:
        assert len(result) == 8 and all(float(r["value"][1]) > 1.0 for r in result)  # all drifted


def test_drift_alert_fires_from_the_pushed_verdict(stack: Stack) -> None:
    firing = _eventually(stack.prom_url, 'ALERTS{alertname="AidetectDataDrift", alertstate="firing"}')
    assert firing and firing[0]["metric"]["model"] == MODEL and firing[0]["metric"]["version"] == "7"
