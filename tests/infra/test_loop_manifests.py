"""The closed loop on a cluster (issue 15): the CronWorkflows in manifests/monitoring that sync the review
queue, check live quality and submit the KFP monitoring pipeline (daily, and weekly with scheduled=true).
Rendered with kustomize, validated against Argo's CronWorkflow schema, scanned by checkov, and every
command, flag, pipeline parameter, bucket URI and IAM prefix they rely on checked against the code,
Ansible and Terraform."""

from __future__ import annotations

import copy
import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from aidetect.cli import main
from aidetect.gitops import render

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "manifests" / "monitoring"
CHECKOV = REPO / ".venv-infra" / "bin" / "checkov"
LOOP = ("aidetect-review-sync", "aidetect-quality-check", "aidetect-closed-loop", "aidetect-periodic-retrain")
SUBMITTERS = ("aidetect-closed-loop", "aidetect-periodic-retrain")  # both submit the monitoring pipeline
STORAGE_CONFIGMAP = "aidetect-platform-storage"
VAR = re.compile(r"\$\(([A-Z0-9_]+)\)")


@pytest.fixture(scope="module")
def loop() -> dict[str, dict]:
    docs = render.render(MONITORING)
    return {
        d["metadata"]["name"]: d
        for d in docs
        if d["kind"] == "CronWorkflow" and d["metadata"]["name"] in LOOP
    }


def _containers(cron: dict) -> list[dict]:
    return [t["container"] for t in cron["spec"]["workflowSpec"]["templates"] if "container" in t]


def _argv(container: dict) -> list[str]:
    """The ``aidetect`` command line a container runs (through ``sh -c`` too)."""
    argv = [*container["command"], *container.get("args", [])]
    if argv[:2] == ["sh", "-c"]:
        argv = shlex.split(argv[2].split(";")[0])
    return argv


def _storage_configmap() -> dict[str, str]:
    """The storage ConfigMap the aidetect_platform role writes from the Terraform outputs."""
    tasks = yaml.safe_load((REPO / "ansible/roles/aidetect_platform/tasks/main.yml").read_text())
    for task in tasks:
        definition = (task.get("kubernetes.core.k8s") or {}).get("definition")
        if isinstance(definition, dict) and definition["metadata"]["name"] == STORAGE_CONFIGMAP:
            return dict(definition["data"])
    raise AssertionError(f"no Ansible task writes the {STORAGE_CONFIGMAP} ConfigMap")


def test_loop_workflows_render_and_validate_against_the_crd_schema(loop: dict[str, dict]) -> None:
    assert set(loop) == set(LOOP)
    if not [d for d in render.schema_dirs() if d != REPO / "manifests" / "schemas"]:
        pytest.skip("../shared/k8s-schemas is not present (CI has it)")
    report = render.validate_documents(list(loop.values()))
    assert report.errors == [] and report.skipped == []
    broken = copy.deepcopy(loop["aidetect-review-sync"])
    broken["spec"]["workflowSpec"]["templates"][0]["steps"][0][0]["arguments"] = "action=pull"
    broken["spec"]["concurrency"] = "Forbid"
    errors = render.validate_documents([broken]).errors
    assert any("arguments" in e for e in errors) and any("concurrency" in e for e in errors), errors


def test_each_workflow_runs_an_aidetect_command_that_exists(loop: dict[str, dict]) -> None:
    """The command words and every flag parse (``--help`` is answered only when the options do)."""
    seen = []
    for cron in loop.values():
        for container in _containers(cron):
            argv = _argv(container)
            assert argv[0] == "aidetect", argv
            if "{{inputs.parameters.action}}" in argv:  # the review template, once per step
                steps = cron["spec"]["workflowSpec"]["templates"][0]["steps"]
                actions = [s[0]["arguments"]["parameters"][0]["value"] for s in steps]
                assert actions == ["pull", "push"], "annotations are imported before new tasks are made"
                runs = [[a if a != "{{inputs.parameters.action}}" else act for a in argv] for act in actions]
            else:
                runs = [argv]
            for words in runs:
                res = CliRunner().invoke(main, [*words[1:], "--help"])
                assert res.exit_code == 0, f"{words}: {res.output}"
                seen.append(" ".join(words[1:3]))
    assert sorted(seen) == [
        "pipeline submit",
        "pipeline submit",
        "quality check",
        "review pull",
        "review push",
    ]


def test_the_quality_check_never_retrains_and_too_few_labels_is_no_failure(loop: dict[str, dict]) -> None:
    """The exit codes themselves are tested on the CLI (tests/unit/test_quality_cli.py)."""
    (container,) = _containers(loop["aidetect-quality-check"])
    argv = _argv(container)
    assert "--no-retrain" in argv, "retraining belongs to the closed loop, which grows the data first"
    assert "--allow-no-verdict" in argv and "--fail-on-degradation" not in argv
    assert argv[argv.index("--pushgateway") + 1].startswith("http://prometheus-pushgateway.")


def _given(argv: list[str]) -> dict[str, str]:
    return {
        argv[i + 1].split("=", 1)[0]: argv[i + 1].split("=", 1)[1]
        for i, a in enumerate(argv)
        if a == "--param"
    }


@pytest.mark.parametrize("name", SUBMITTERS)
def test_the_loop_submits_the_monitoring_pipeline_with_its_parameters(
    loop: dict[str, dict], name: str
) -> None:
    (container,) = _containers(loop[name])
    argv = _argv(container)
    assert argv[:4] == ["aidetect", "pipeline", "submit", "monitoring"]
    compiled = next(yaml.safe_load_all((REPO / "pipelines/compiled/monitoring.yaml").read_text()))
    params = compiled["root"]["inputDefinitions"]["parameters"]
    given = _given(argv)
    assert set(given) <= set(params), set(given) - set(params)
    assert {"labels_root", "capture_store", "inference_log", "kfp_host", "mlflow_uri"} <= set(given)
    assert given["kfp_host"].startswith("http://ml-pipeline.kubeflow.svc")
    assert "--data" in argv  # the pipeline's only required parameter
    # a step pod loses its disk: verdicts and the cooldown's launch record go where the checks keep theirs
    assert given["drift_reports"] == "$(AIDETECT_DRIFT__REPORTS_URI)"
    assert given["quality_reports"] == "$(AIDETECT_FEEDBACK__QUALITY__REPORTS_URI)"
    assert given["retrain_state"] == "$(AIDETECT_DRIFT__RETRAIN__STATE_URI)"
    # the monitoring pipeline really has the loop's steps
    steps = {t["taskInfo"]["name"] for t in compiled["root"]["dag"]["tasks"].values()}
    assert {"drift-check", "quality-check", "decide-retrain", "retrain-needed"} <= steps


def test_the_weekly_retrain_grows_first_as_the_closed_loop_does(loop: dict[str, dict]) -> None:
    """Not the fixed labelled/latest: the weekly run is the closed loop with the schedule as its trigger,
    so it grows the served model's line with the week's labels and trains on that, within the shared
    cooldown. Its exact command, run against a KFP API, submits that run."""
    from tests.helpers.kfp_api import fake_kfp_api

    weekly, daily = (
        _given(_argv(_containers(loop[n])[0])) for n in ("aidetect-periodic-retrain", "aidetect-closed-loop")
    )
    assert weekly.pop("scheduled") == "true" and "scheduled" not in daily
    assert {k: v for k, v in weekly.items() if k != "since"} == {
        k: v for k, v in daily.items() if k != "since"
    }
    (container,) = _containers(loop["aidetect-periodic-retrain"])
    with fake_kfp_api() as api:
        argv = [
            api.url if a.startswith("http://ml-pipeline.") else VAR.sub(r"s3://bucket/\1", a)
            for a in _argv(container)
        ]
        res = CliRunner().invoke(main, argv[1:])
        assert res.exit_code == 0, res.output
        (run,) = api.received("POST", "/apis/v2beta1/runs")
    sent = run.body["runtime_config"]["parameters"]
    assert sent["scheduled"] is True and sent["data_uri"] == "s3://bucket/AIDETECT_DRIFT__RETRAIN__DATA_URI"
    assert sent["retrain_state"] == "s3://bucket/AIDETECT_DRIFT__RETRAIN__STATE_URI"
    assert run.body["pipeline_spec"]["pipelineInfo"]["name"] == "aidetect-monitoring"


def test_bucket_uris_come_from_the_storage_configmap_under_prefixes_iam_allows(loop: dict[str, dict]) -> None:
    data = _storage_configmap()
    for cron in loop.values():
        for container in _containers(cron):
            assert {"configMapRef": {"name": STORAGE_CONFIGMAP}} in container["envFrom"]
            for arg in container.get("args", []):
                for var in VAR.findall(arg):
                    assert var in data, f"{cron['metadata']['name']}: $({var}) is not in {STORAGE_CONFIGMAP}"
    artifacts, logs = (
        "s3://{{ aidetect_tf.buckets.artifacts }}/",
        "s3://{{ aidetect_tf.buckets['inference-logs'] }}/",
    )
    # review pull (monitoring account) appends the label log; the quality check writes its verdicts
    assert data["AIDETECT_FEEDBACK__LABELS__ROOT"].startswith(artifacts + "monitoring/")
    assert data["AIDETECT_FEEDBACK__QUALITY__REPORTS_URI"].startswith(artifacts + "monitoring/")
    # kept images live beside the inference log: the predictor may write there, monitoring and pipelines read
    assert data["AIDETECT_FEEDBACK__CAPTURE__STORE_URI"].startswith(logs + "captured/")
    iam = (REPO / "terraform/modules/platform_iam/main.tf").read_text()
    monitoring = iam.split('data "aws_iam_policy_document" "monitoring"', 1)[1].split("\ndata ", 1)[0]
    assert '"${local.artifacts}/monitoring/*"' in monitoring and "s3:PutObject" in monitoring
    for role in ("monitoring", "pipelines"):
        policy = iam.split(f'data "aws_iam_policy_document" "{role}"', 1)[1].split("\ndata ", 1)[0]
        assert '"${local.logs}/*"' in policy, f"{role} cannot read the kept images"
    pipelines = iam.split('data "aws_iam_policy_document" "pipelines"', 1)[1].split("\ndata ", 1)[0]
    assert '"${local.datasets}/*"' in pipelines, "the pipeline's grow step writes dataset versions"


def test_workflows_run_locked_down_as_the_monitoring_account(loop: dict[str, dict]) -> None:
    from aidetect.feedback.config import ReviewConfig

    (account,) = [d for d in render.render(MONITORING) if d["kind"] == "ServiceAccount"]
    for name, cron in loop.items():
        spec = cron["spec"]
        assert spec["concurrencyPolicy"] == "Forbid", name
        wf = spec["workflowSpec"]
        assert wf["serviceAccountName"] == account["metadata"]["name"] == "aidetect-monitoring"
        assert wf["automountServiceAccountToken"] is True  # Argo's executor reports through the API
        assert wf["podMetadata"]["labels"]["sidecar.istio.io/inject"] == "false"
        assert wf["securityContext"]["runAsNonRoot"] is True
        for container in _containers(cron):
            assert container["image"].startswith("aidetect-train:"), "Ansible prefixes the account's ECR"
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert container["resources"]["limits"], name
    (review,) = _containers(loop["aidetect-review-sync"])
    env = {e["name"]: e for e in review["env"]}
    token = env[ReviewConfig().token_env]
    # optional: a missing Secret lets the sync start and say so, instead of a pod that never starts
    assert token["valueFrom"]["secretKeyRef"] == {
        "name": "aidetect-label-studio",
        "key": "token",
        "optional": True,
    }
    assert env["AIDETECT_FEEDBACK__REVIEW__URL"]["value"].startswith("http://")


def test_checkov_passes_on_the_loop_workflows(loop: dict[str, dict], tmp_path: Path) -> None:
    """checkov's Argo checks read ``Workflow`` documents: each CronWorkflow's workflowSpec, as it runs."""
    if not CHECKOV.exists():
        pytest.skip(f"{CHECKOV} missing (make infra-venv)")
    for name, cron in loop.items():
        run = {"apiVersion": cron["apiVersion"], "kind": "Workflow", "metadata": cron["metadata"]}
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({**run, "spec": cron["spec"]["workflowSpec"]}))
    bare = {"entrypoint": "x", "templates": [{"name": "x", "container": {"image": "busybox"}}]}
    planted = {
        "apiVersion": cron["apiVersion"],
        "kind": "Workflow",
        "metadata": {"name": "planted"},
        "spec": bare,
    }
    (tmp_path / "planted.yaml").write_text(yaml.safe_dump(planted))
    proc = subprocess.run(
        [str(CHECKOV), "-d", str(tmp_path), "--framework", "argo_workflows", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    out = json.loads(proc.stdout)
    results = (out[0] if isinstance(out, list) else out)["results"]
    failed = [(c["check_id"], c["file_path"]) for c in results["failed_checks"]]
    assert failed and all(path.endswith("planted.yaml") for _, path in failed), failed  # the scan is live
    passed = {(c["check_id"], Path(c["file_path"]).stem) for c in results["passed_checks"]}
    for name in LOOP:
        assert {("CKV_ARGO_1", name), ("CKV_ARGO_2", name)} <= passed, passed
