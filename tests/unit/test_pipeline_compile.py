"""The compiled IR YAML: current with the code, the right shape, the right artifact types and resources."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from aidetect.cli import main
from pipelines import config as pconfig
from pipelines.compile import COMPILED_DIR, compile_all

STEPS = ["ingest", "validate", "train", "evaluate", "gate", "optimize", "register"]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both pipelines compiled now from configs/pipeline.yaml (no env overrides)."""
    out = tmp_path_factory.mktemp("compiled")
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in __import__("os").environ if k.startswith("AIDETECT_PIPELINE__")]:
            mp.delenv(key)
        compile_all(pconfig.load(), out)
    return out


def _docs(path: Path) -> list[dict]:
    return list(yaml.safe_load_all(path.read_text()))


@pytest.mark.parametrize("name", ["training", "monitoring"])
def test_committed_yaml_is_current(fresh: Path, name: str) -> None:
    committed = COMPILED_DIR / f"{name}.yaml"
    assert committed.exists(), f"{committed} missing: run `aidetect pipeline compile`"
    assert committed.read_text() == (fresh / f"{name}.yaml").read_text(), (
        f"{committed} is stale: run `aidetect pipeline compile` and commit the result"
    )


def test_training_pipeline_order_and_gate_condition(fresh: Path) -> None:
    spec, _platform = _docs(fresh / "training.yaml")
    tasks = spec["root"]["dag"]["tasks"]
    deps = {name: set(t.get("dependentTasks", [])) for name, t in tasks.items()}
    assert deps["validate"] == {"ingest"}
    assert deps["train"] == {"validate"}, "train uses the validated dataset version"
    assert deps["evaluate"] == {"train", "validate"}
    assert deps["gate"] == {"evaluate"}
    cond = tasks["condition-1"]
    assert cond["taskInfo"]["name"] == "gate-passed"
    assert "gate" in deps["condition-1"]
    assert (
        cond["triggerPolicy"]["condition"]
        == "inputs.parameter_values['pipelinechannel--gate-Output'] == true"
    )
    inner = spec["components"]["comp-condition-1"]["dag"]["tasks"]
    assert set(inner) == {"optimize", "register"}
    assert inner["register"]["dependentTasks"] == ["optimize"]
    # data_uri is required; everything else has a default
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert not params["data_uri"].get("isOptional")
    assert all(p.get("isOptional") for n, p in params.items() if n != "data_uri")


def test_components_use_the_project_image_without_installing_kfp(fresh: Path) -> None:
    for name in ("training", "monitoring"):
        spec = _docs(fresh / f"{name}.yaml")[0]
        for executor in spec["deploymentSpec"]["executors"].values():
            container = executor["container"]
            assert container["image"] == "ghcr.io/aidetect/aidetect-train:0.1.0"
            script = " ".join(container["command"])
            assert "pip install" not in script
            assert "from aidetect.flows" in script  # the body maps artifacts to a flow call


def test_typed_artifacts_for_the_kfp_ui(fresh: Path) -> None:
    spec = _docs(fresh / "training.yaml")[0]

    def outputs(comp: str) -> dict[str, str]:
        arts = spec["components"][comp]["outputDefinitions"]["artifacts"]
        return {n: a["artifactType"]["schemaTitle"] for n, a in arts.items()}

    assert outputs("comp-ingest") == {"dataset": "system.Dataset"}
    assert outputs("comp-validate") == {
        "validated": "system.Dataset",
        "report": "system.HTML",
        "summary": "system.Metrics",
    }
    assert outputs("comp-train") == {"model": "system.Model", "metrics": "system.Metrics"}
    assert outputs("comp-evaluate") == {
        "evaluated": "system.Model",
        "metrics": "system.Metrics",
        "classification": "system.ClassificationMetrics",
    }
    assert outputs("comp-gate") == {"report": "system.Markdown", "gate_result": "system.Artifact"}
    assert outputs("comp-optimize") == {"bundle": "system.Model"}
    assert outputs("comp-register") == {"registered": "system.Artifact"}
    mon = _docs(fresh / "monitoring.yaml")[0]
    drift = mon["components"]["comp-drift-check"]["outputDefinitions"]["artifacts"]
    assert drift["report"]["artifactType"]["schemaTitle"] == "system.HTML"


def test_train_step_requests_a_gpu_with_parameterised_placement(fresh: Path) -> None:
    spec, platform = _docs(fresh / "training.yaml")
    resources = spec["deploymentSpec"]["executors"]["exec-train"]["container"]["resources"]
    assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert resources["accelerator"]["resourceCount"] == "1"
    assert "accelerator" not in spec["deploymentSpec"]["executors"]["exec-evaluate"]["container"].get(
        "resources", {}
    )
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(k8s) == {"exec-train"}
    assert k8s["exec-train"]["nodeSelector"] == {
        "nodeSelectorJson": {"componentInputParameter": "node_selector"}
    }
    assert k8s["exec-train"]["tolerations"] == [
        {"tolerationJson": {"componentInputParameter": "tolerations"}}
    ]
    defaults = spec["root"]["inputDefinitions"]["parameters"]
    assert defaults["tolerations"]["defaultValue"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]


def test_train_resources_follow_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIDETECT_PIPELINE__TRAIN_RESOURCES__ACCELERATOR_LIMIT", "0")
    res = CliRunner().invoke(main, ["pipeline", "compile", "--out", str(tmp_path), "--tag", "v9"])
    assert res.exit_code == 0, res.output
    spec = _docs(tmp_path / "training.yaml")[0]
    train = spec["deploymentSpec"]["executors"]["exec-train"]["container"]
    assert "accelerator" not in train.get("resources", {})
    assert train["image"].endswith("/aidetect-train:v9")


def test_bad_config_is_one_line(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["pipeline", "compile", "--out", str(tmp_path), "--tag", "bad tag!"])
    assert res.exit_code != 0
    assert res.output.strip() == "error: images.tag: not a valid image tag: 'bad tag!'"
