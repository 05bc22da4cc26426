"""Submission to a KFP API: the requests kfp.Client sends, checked on a loopback stand-in (no cluster)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from aidetect.cli import main
from tests.helpers.kfp_api import fake_kfp_api
from tests.helpers.servers import free_port


def _cli(*args: str):
    return CliRunner().invoke(main, list(args))


def test_submit_run_sends_the_compiled_spec_and_parameters() -> None:
    with fake_kfp_api() as api:
        res = _cli(
            "pipeline",
            "submit",
            "training",
            "--host",
            api.url,
            "--data",
            "s3://bucket/new-images",
            "--param",
            "preset=small",
            "--param",
            'node_selector={"pool": "gpu-a100"}',
            "--run-name",
            "nightly",
        )
        assert res.exit_code == 0, res.output
        assert "created run run-1" in res.output
        assert f"{api.url}/#/runs/details/run-1" in res.output
        # an experiment was looked up by name, then created once
        (created,) = api.received("POST", "/apis/v2beta1/experiments")
        assert created.body["display_name"] == "aidetect"
        (run,) = api.received("POST", "/apis/v2beta1/runs")
    body = run.body
    assert body["display_name"] == "nightly"
    assert body["experiment_id"] == "exp-1"
    # a spec with Kubernetes platform settings travels as {pipeline_spec, platform_spec}
    spec = body["pipeline_spec"]["pipeline_spec"]
    assert spec["pipelineInfo"]["name"] == "aidetect-training"
    train_k8s = body["pipeline_spec"]["platform_spec"]["platforms"]["kubernetes"]["deploymentSpec"][
        "executors"
    ]
    assert train_k8s["exec-train"]["nodeSelector"] == {
        "nodeSelectorJson": {"componentInputParameter": "node_selector"}
    }
    assert set(spec["root"]["dag"]["tasks"]) == {
        "ingest",
        "validate",
        "train",
        "evaluate",
        "gate",
        "condition-1",
    }
    params = body["runtime_config"]["parameters"]
    assert params == {
        "data_uri": "s3://bucket/new-images",
        "preset": "small",
        "node_selector": {"pool": "gpu-a100"},
    }
    image = spec["deploymentSpec"]["executors"]["exec-train"]["container"]["image"]
    assert image == "ghcr.io/aidetect/aidetect-train:0.1.0"


def test_submit_twice_reuses_the_experiment() -> None:
    with fake_kfp_api() as api:
        for _ in range(2):
            assert _cli("pipeline", "submit", "training", "--host", api.url, "--data", "/d").exit_code == 0
        assert len(api.received("POST", "/apis/v2beta1/experiments")) == 1
        runs = api.received("POST", "/apis/v2beta1/runs")
        assert [r.body["experiment_id"] for r in runs] == ["exp-1", "exp-1"]


def test_schedule_creates_a_recurring_run_with_a_six_field_cron() -> None:
    with fake_kfp_api() as api:
        res = _cli(
            "pipeline",
            "submit",
            "monitoring",
            "--host",
            api.url,
            "--data",
            "/d",
            "--schedule",
            "*/30 * * * *",
        )
        assert res.exit_code == 0, res.output
        assert "created recurring-run rr-1" in res.output
        (rec,) = api.received("POST", "/apis/v2beta1/recurringruns")
        assert not api.received("POST", "/apis/v2beta1/runs")
    body = rec.body
    assert body["trigger"]["cron_schedule"]["cron"] == "0 */30 * * * *"
    assert body["mode"] == "ENABLE"
    assert body["max_concurrency"] == "1" or body["max_concurrency"] == 1
    assert body["no_catchup"] is True
    assert body["pipeline_spec"]["pipelineInfo"]["name"] == "aidetect-monitoring"  # no platform spec here
    assert body["runtime_config"]["parameters"] == {"data_uri": "/d"}


def test_image_registry_and_tag_come_from_config(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIDETECT_PIPELINE__IMAGES__REGISTRY", "registry.internal:5000/ml")
    monkeypatch.setenv("AIDETECT_PIPELINE__IMAGES__TAG", "sha-abc123")
    with fake_kfp_api() as api:
        assert _cli("pipeline", "submit", "training", "--host", api.url, "--data", "/d").exit_code == 0
        (run,) = api.received("POST", "/apis/v2beta1/runs")
    executors = run.body["pipeline_spec"]["pipeline_spec"]["deploymentSpec"]["executors"]
    assert {e["container"]["image"] for e in executors.values()} == {
        "registry.internal:5000/ml/aidetect-train:sha-abc123"
    }


def test_unreachable_host_is_one_line() -> None:
    res = _cli("pipeline", "submit", "training", "--host", f"http://127.0.0.1:{free_port()}", "--data", "/d")
    assert res.exit_code != 0
    lines = res.output.strip().splitlines()
    assert len(lines) == 1, res.output
    assert (
        lines[0].startswith("error: Kubeflow Pipelines API at http://127.0.0.1:")
        and "unreachable" in lines[0]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "error: missing pipeline parameter 'data_uri'"),
        (("--data", "/d", "--param", "epochs=3"), "error: unknown pipeline parameter 'epochs'"),
        (
            ("--data", "/d", "--param", "tolerations=notjson"),
            "error: pipeline parameter 'tolerations': expected JSON",
        ),
        (("--data", "/d", "--schedule", "every day"), "error: --schedule: expected a cron expression"),
    ],
)
def test_bad_parameters_fail_before_contacting_the_api(args: tuple[str, ...], message: str) -> None:
    with fake_kfp_api() as api:
        res = _cli("pipeline", "submit", "training", "--host", api.url, *args)
        assert res.exit_code != 0
        assert res.output.strip().startswith(message), res.output
        assert len(res.output.strip().splitlines()) == 1
        assert api.requests == []


def test_api_rejection_is_reported_in_one_line() -> None:
    with fake_kfp_api() as api:
        api.fail_runs_with = 400
        res = _cli("pipeline", "submit", "training", "--host", api.url, "--data", "/d")
    assert res.exit_code != 0
    lines = res.output.strip().splitlines()
    assert len(lines) == 1, res.output
    assert "refused the request: HTTP 400" in lines[0] and "pipeline spec rejected" in lines[0]


def test_recorded_bodies_are_json_objects() -> None:
    """Guard against the client sending the spec as a string (KFP expects a JSON object)."""
    with fake_kfp_api() as api:
        _cli("pipeline", "submit", "training", "--host", api.url, "--data", "/d")
        (run,) = api.received("POST", "/apis/v2beta1/runs")
    assert isinstance(run.body["pipeline_spec"], dict)
    json.dumps(run.body)
