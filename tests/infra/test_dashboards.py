"""Dashboards as code: the committed JSON is what the code generates, every query parses, and the
monitoring manifests render and validate (ConfigMap for the Grafana sidecar, CronWorkflows, rules)."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from aidetect.monitoring import dashboards, generate, promql

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "manifests" / "monitoring"

SERVING_METRICS = {  # fixed in docs/CONTRACTS.md
    "aidetect_request_duration_seconds",
    "aidetect_requests_total",
    "aidetect_predictions_total",
    "aidetect_fake_probability",
    "aidetect_rejected_inputs_total",
    "aidetect_model_info",
}


def _promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.skip("promtool is not installed (Debian package prometheus; CI installs it)")
    return found


def test_committed_dashboards_and_rules_are_up_to_date() -> None:
    stale = generate.stale_files(MONITORING)
    assert stale == [], f"regenerate: python -m aidetect.monitoring.generate manifests/monitoring ({stale})"


def test_a_stale_file_is_detected(tmp_path: Path) -> None:
    copy_dir = tmp_path / "monitoring"
    generate.write(copy_dir)
    assert generate.stale_files(copy_dir) == []
    board = copy_dir / "dashboards" / "aidetect-service.json"
    board.write_text(board.read_text().replace("Requests per second", "Requests"))
    (copy_dir / "prometheusrule.yaml").unlink()
    assert generate.stale_files(copy_dir) == ["dashboards/aidetect-service.json", "prometheusrule.yaml"]
    assert generate.main(["--check", str(copy_dir)]) == 1


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    committed = {
        expr
        for path in (MONITORING / "dashboards").glob("*.json")
        for expr in dashboards.panel_exprs(path.read_text())
    }
    generated = {q.expr for q in dashboards.queries()}
    assert committed == generated and len(committed) >= 20
    rules = [
        {"record": f"aidetect:dashboard_query_{i}", "expr": promql.concrete(e)}
        for i, e in enumerate(sorted(committed))
    ]
    path = tmp_path / "dashboard-queries.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}))
    out = subprocess.run([_promtool(), "check", "rules", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(rules)} rules found" in out.stdout


def test_dashboards_use_the_contract_metric_names() -> None:
    names = set()
    for q in dashboards.queries():
        names |= set(re.findall(r"\b(aidetect_[a-z_]+?)(?:_bucket|_sum|_count)?\b(?=\s*[{\[)])", q.expr))
    serving = {
        n
        for n in names
        if not n.startswith(
            ("aidetect_drift", "aidetect_retrain", "aidetect_pipeline", "aidetect_gate", "aidetect_live")
        )
    }
    assert serving == SERVING_METRICS
    from aidetect.monitoring.exposition import DRIFT_METRICS, PIPELINE_METRICS, QUALITY_METRICS

    assert names - serving <= set(DRIFT_METRICS) | set(PIPELINE_METRICS) | set(QUALITY_METRICS)


def test_dashboards_cover_what_operators_need() -> None:
    boards = {name: json.loads(body) for name, body in dashboards.render_all().items()}
    titles = {name: {p["title"] for p in b["panels"]} for name, b in boards.items()}
    assert {
        "Requests per second",
        "Latency p50 / p95 / p99",
        "Server error ratio",
        "Predictor CPU",
    } <= titles["aidetect-service.json"]
    assert {
        "Fake rate (canary vs stable)",
        "Fake probability distribution",
        "Live F1 by version and track",
    } <= (titles["aidetect-model.json"])
    assert {"Drift share", "Top drifting features"} <= titles["aidetect-data.json"]
    assert {"Since last run", "Gate passed"} <= titles["aidetect-pipelines.json"]
    for board in boards.values():
        assert board["uid"].startswith("aidetect-") and "generated" in board["tags"]
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    latency = json.dumps(boards["aidetect-service.json"])
    assert all(f"histogram_quantile({q}" in latency for q in ("0.5", "0.95", "0.99"))
    assert "by (track)" in json.dumps(boards["aidetect-model.json"])  # canary vs stable
    assert "by (model, track)" in json.dumps(boards["aidetect-model.json"])  # image and text models


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    from aidetect.gitops import render

    return render.render(MONITORING)


def _kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def test_monitoring_manifests_render_and_validate(rendered: list[dict]) -> None:
    from aidetect.gitops import render

    if not [d for d in render.schema_dirs() if d != REPO / "manifests" / "schemas"]:
        pytest.skip("../shared/k8s-schemas is not present (CI has it)")
    report = render.validate_documents(rendered)
    assert report.errors == [] and report.skipped == []
    assert {d["kind"] for d in rendered} == {
        "ConfigMap", "CronWorkflow", "PrometheusRule", "ServiceAccount"
    }  # fmt: skip
    broken = copy.deepcopy(rendered)
    cron = _kind(broken, "CronWorkflow")[0]
    cron["spec"]["schedule_"] = "hourly"
    cron["spec"]["workflowSpec"]["templates"][0]["container"]["args"] = "--model x"
    errors = render.validate_documents(broken).errors
    assert any("schedule_" in e for e in errors) and any("args" in e for e in errors), errors


def test_dashboards_are_provisioned_through_a_labelled_configmap(rendered: list[dict]) -> None:
    (cm,) = _kind(rendered, "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert set(cm["data"]) == {p.name for p in (MONITORING / "dashboards").glob("*.json")}
    for name, body in cm["data"].items():
        assert body == (MONITORING / "dashboards" / name).read_text()


def test_cronworkflows_run_the_drift_check_and_the_periodic_retrain(rendered: list[dict]) -> None:
    crons = {c["metadata"]["name"]: c for c in _kind(rendered, "CronWorkflow")}
    drift = crons["aidetect-drift-check"]["spec"]
    assert drift["concurrencyPolicy"] == "Forbid"  # two checks must never race on the retrain cooldown
    (template,) = drift["workflowSpec"]["templates"]
    container = template["container"]
    assert container["command"] == ["aidetect", "drift", "check"]
    assert "--model" in container["args"] and "--since" in container["args"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["AIDETECT_DRIFT__PUSHGATEWAY_URL"].startswith("http://")
    # Bucket URIs are per account: Ansible writes them into the ConfigMap both workflows read.
    storage_keys = _ansible_storage_configmap_keys()
    assert {
        "AIDETECT_DRIFT__LOG_URI",
        "AIDETECT_DRIFT__REPORTS_URI",
        "AIDETECT_DRIFT__RETRAIN__STATE_URI",
        "AIDETECT_DRIFT__RETRAIN__DATA_URI",
    } <= storage_keys
    from aidetect.monitoring.config import load_drift_config

    retrain_env = {"command": env["AIDETECT_DRIFT__RETRAIN__COMMAND"], "data_uri": "s3://bucket/labelled"}
    env_cfg = load_drift_config(overrides={"retrain": retrain_env})
    assert env_cfg.retrain.command[:4] == ["aidetect", "pipeline", "submit", "training"]
    assert "{data_uri}" in env_cfg.retrain.command
    retrain = crons["aidetect-periodic-retrain"]["spec"]
    assert retrain["workflowSpec"]["templates"][0]["container"]["command"][:3] == [
        "aidetect",
        "pipeline",
        "submit",
    ]
    retrain_args = retrain["workflowSpec"]["templates"][0]["container"]["args"]
    data_arg = retrain_args[retrain_args.index("--data") + 1]
    assert data_arg.startswith("$(") and data_arg[2:-1] in storage_keys  # expanded from the ConfigMap
    for spec in (drift, retrain):
        c = spec["workflowSpec"]["templates"][0]["container"]
        assert {"configMapRef": {"name": STORAGE_CONFIGMAP}} in c["envFrom"]
        assert c["securityContext"]["readOnlyRootFilesystem"] and c["resources"]["limits"]


STORAGE_CONFIGMAP = "aidetect-platform-storage"


def _ansible_storage_configmap_keys() -> set[str]:
    """Keys of the storage ConfigMap the aidetect_platform role writes from the Terraform outputs."""
    tasks = yaml.safe_load((REPO / "ansible/roles/aidetect_platform/tasks/main.yml").read_text())
    for task in tasks:
        definition = (task.get("kubernetes.core.k8s") or {}).get("definition")
        if isinstance(definition, dict) and definition["metadata"]["name"] == STORAGE_CONFIGMAP:
            return set(definition["data"])
    raise AssertionError(f"no Ansible task writes the {STORAGE_CONFIGMAP} ConfigMap")
