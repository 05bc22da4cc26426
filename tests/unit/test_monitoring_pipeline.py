"""The monitoring pipeline closes the loop: both checks -> one decision -> grow -> retrain; and the rules
its steps call (one verdict from two checks, no retrain without data to learn from)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from aidetect.errors import AidetectError
from aidetect.flows.loop import grow_training_data, retrain_decision
from pipelines import config as pconfig
from pipelines.compile import compile_pipeline


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("compiled") / "monitoring.yaml"
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in __import__("os").environ if k.startswith("AIDETECT_PIPELINE__")]:
            mp.delenv(key)
        compile_pipeline("monitoring", pconfig.load(), out)
    return next(yaml.safe_load_all(out.read_text()))


def _condition(task: dict) -> str:
    return task["triggerPolicy"]["condition"]


def test_both_checks_feed_one_decision_then_grow_then_retrain(spec: dict) -> None:
    root = spec["root"]["dag"]["tasks"]
    assert set(root) == {"drift-check", "quality-check", "decide-retrain", "condition-1"}
    assert "dependentTasks" not in root["drift-check"] and "dependentTasks" not in root["quality-check"]
    assert set(root["decide-retrain"]["dependentTasks"]) == {"drift-check", "quality-check"}
    decide_inputs = root["decide-retrain"]["inputs"]["artifacts"]
    assert decide_inputs["drift"]["taskOutputArtifact"] == {
        "outputArtifactKey": "verdict",
        "producerTask": "drift-check",
    }
    assert decide_inputs["quality"]["taskOutputArtifact"]["producerTask"] == "quality-check"
    assert root["condition-1"]["taskInfo"]["name"] == "retrain-needed"
    assert "decide-retrain-Output'] == true" in _condition(root["condition-1"])

    needed = spec["components"]["comp-condition-1"]["dag"]["tasks"]
    assert set(needed) == {"grow", "condition-2"}
    assert needed["condition-2"]["taskInfo"]["name"] == "data-to-train-on"
    assert "grow-Output'] == true" in _condition(needed["condition-2"])
    grow_params = needed["grow"]["inputs"]["parameters"]
    assert {"data_uri", "datasets_root", "labels_root", "capture_store", "state_uri"} <= set(grow_params)

    (trigger,) = spec["components"]["comp-condition-2"]["dag"]["tasks"].values()
    assert trigger["taskInfo"]["name"] == "trigger-retrain"
    arts = trigger["inputs"]["artifacts"]
    assert arts["train_on"] == {"componentInputArtifact": "pipelinechannel--grow-train_on"}
    assert arts["verdict"] == {"componentInputArtifact": "pipelinechannel--decide-retrain-decision"}
    assert "data_uri" not in trigger["inputs"]["parameters"], "retrain trains on what the grow step chose"


def test_parameters_and_artifact_types(spec: dict) -> None:
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert not params["data_uri"].get("isOptional")
    assert all(p.get("isOptional") for n, p in params.items() if n != "data_uri")
    assert params["quality_since"]["defaultValue"] == "7d"
    assert {"labels_root", "capture_store"} <= set(params)

    def outputs(comp: str) -> dict[str, str]:
        arts = spec["components"][comp]["outputDefinitions"]["artifacts"]
        return {n: a["artifactType"]["schemaTitle"] for n, a in arts.items()}

    assert outputs("comp-quality-check") == {"verdict": "system.Artifact", "metrics": "system.Metrics"}
    assert outputs("comp-decide-retrain") == {"decision": "system.Artifact"}
    assert outputs("comp-grow") == {"train_on": "system.Dataset"}
    for executor in ("exec-quality-check", "exec-decide-retrain", "exec-grow", "exec-trigger-retrain"):
        container = spec["deploymentSpec"]["executors"][executor]["container"]
        assert "from aidetect.flows" in " ".join(container["command"])
        assert "resources" not in container, "the loop's steps need no GPU"


DRIFT = {
    "model_name": "m",
    "model_version": "3",
    "dataset_version": "ds1",
    "drift_detected": True,
    "reasons": ["width drifted"],
    "verdict_uri": "s3://a/drift.json",
}
LIVE = {
    "model_name": "m",
    "model_version": "3",
    "dataset_version": "ds1",
    "status": "degraded",
    "degraded": True,
    "reasons": ["degradation: live F1 0.41 < 0.9"],  # as aidetect.feedback.quality words them
    "verdict_uri": "s3://a/quality.json",
}


def test_the_decision_retrains_on_drift_or_degradation() -> None:
    both = retrain_decision(DRIFT, LIVE)
    assert both["retrain"] and both["triggers"] == ["drift", "degradation"]
    assert both["reasons"] == ["drift: width drifted", "degradation: live F1 0.41 < 0.9"]
    assert (both["model_version"], both["dataset_version"]) == ("3", "ds1")
    assert both["verdicts"] == {"drift": "s3://a/drift.json", "quality": "s3://a/quality.json"}

    quiet_live = {**LIVE, "status": "ok", "degraded": False}
    only_drift = retrain_decision(DRIFT, quiet_live)
    assert only_drift["triggers"] == ["drift"] and only_drift["verdict_uri"] == "s3://a/drift.json"

    only_live = retrain_decision({**DRIFT, "drift_detected": False}, LIVE)
    assert only_live["triggers"] == ["degradation"] and only_live["verdict_uri"] == "s3://a/quality.json"
    assert only_live["reasons"] == ["degradation: live F1 0.41 < 0.9"]

    too_few = {"model_version": "3", "status": "insufficient", "degraded": False, "reasons": []}
    calm = retrain_decision({**DRIFT, "drift_detected": False}, too_few)
    assert not calm["retrain"] and calm["triggers"] == [] and calm["quality_status"] == "insufficient"


def test_checks_of_different_versions_are_refused() -> None:
    with pytest.raises(AidetectError, match="judged version 3 and the quality check 4"):
        retrain_decision(DRIFT, {**LIVE, "model_version": "4"})


def test_no_retrain_without_data_to_learn_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aidetect import flows
    from aidetect.data.demo import generate_demo
    from aidetect.data.versions import list_versions

    stores = flows.Stores(datasets_root=str(tmp_path / "datasets"))
    base = flows.ingest(str(generate_demo(tmp_path / "demo", n_per_class=6, size=16)), stores).dataset
    verdict = retrain_decision({**DRIFT, "dataset_version": base.version_id}, LIVE)
    labels, store = str(tmp_path / "labels"), str(tmp_path / "captured")

    grown = grow_training_data(verdict, "s3://b/labelled", stores, labels_root=labels, capture_store=store)
    assert grown["launch"] is False and grown["reason"].startswith("not launched: "), grown
    assert [v["version_id"] for v in list_versions(stores.datasets)] == [base.version_id]

    monkeypatch.setenv("AIDETECT_FEEDBACK__GROW__BEFORE_RETRAIN", "false")
    kept = grow_training_data(verdict, "s3://b/labelled", stores)
    assert kept == {"launch": True, "reason": "trains on data_uri", "uri": "s3://b/labelled", "grown": None}
    nothing = grow_training_data(verdict, "", stores)
    assert nothing["launch"] is False and "data_uri is empty" in nothing["reason"]


def test_enough_labels_grow_the_served_line_and_retrain_on_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    from aidetect import flows
    from aidetect.data.demo import generate_demo
    from aidetect.data.versions import list_versions
    from aidetect.feedback.capture import ImageStore
    from aidetect.feedback.labels import LabelLog, LabelRecord
    from aidetect.monitoring.config import RetrainConfig
    from aidetect.monitoring.retrain import maybe_retrain

    stores = flows.Stores(datasets_root=str(tmp_path / "datasets"))
    base = flows.ingest(str(generate_demo(tmp_path / "demo", n_per_class=6, size=16)), stores).dataset
    store, log = ImageStore(str(tmp_path / "captured")), LabelLog(str(tmp_path / "labels"))
    new = sorted(generate_demo(tmp_path / "new", n_per_class=4, size=24, seed=5).rglob("*.png"))
    log.append([LabelRecord(store.put(p.read_bytes()), p.parent.name, "label-studio") for p in new])
    monkeypatch.setenv("AIDETECT_FEEDBACK__GROW__MIN_FEEDBACK_ROWS", "5")
    verdict = retrain_decision({**DRIFT, "dataset_version": base.version_id}, LIVE)

    # a launch within the cooldown (the weekly run, yesterday's loop) is asked first: nothing is grown
    state = str(tmp_path / "state" / "retrain-state.json")
    held = maybe_retrain(RetrainConfig(command=[sys.executable, "-c", "pass"], state_uri=state),
                         model_name="m", model_version="3", dataset_version=base.version_id,
                         reasons=["weekly"], verdict_uri="", log_dir=str(tmp_path / "log"))  # fmt: skip
    assert held.launched
    refused = grow_training_data(verdict, "", stores, labels_root=str(tmp_path / "labels"),
                                 capture_store=str(tmp_path / "captured"), state_uri=state)  # fmt: skip
    assert refused["launch"] is False and "cooldown" in refused["reason"], refused
    assert [v["version_id"] for v in list_versions(stores.datasets)] == [base.version_id]

    made = grow_training_data(
        verdict,
        "s3://b/labelled",
        stores,
        labels_root=str(tmp_path / "labels"),
        capture_store=str(tmp_path / "captured"),
    )
    assert made["launch"] is True, made
    grown = flows.DatasetRef.resolve(made["version_id"], stores.datasets_root)
    assert made["uri"] == grown.uri != "s3://b/labelled"  # what trigger-retrain hands the training run
    rows = grown.open().rows()
    feedback = rows[rows["provenance"] == "feedback"]
    assert set(feedback["sha256"]) == {hashlib.sha256(p.read_bytes()).hexdigest() for p in new}


def test_a_window_too_small_for_drift_leaves_the_decision_to_live_quality() -> None:
    from aidetect.flows.monitoring import insufficient_verdict

    quiet = insufficient_verdict("m", "the window holds 12 usable rows, fewer than min_rows 200")
    assert quiet["status"] == "insufficient" and not quiet["drift_detected"]
    degraded = retrain_decision(quiet, LIVE)
    assert degraded["retrain"] and degraded["triggers"] == ["degradation"]
    assert (degraded["model_version"], degraded["dataset_version"]) == ("3", "ds1")
    assert degraded["verdict_uri"] == "s3://a/quality.json"
    calm = retrain_decision(quiet, {**LIVE, "status": "ok", "degraded": False, "reasons": []})
    assert not calm["retrain"] and calm["reasons"] == []


def test_verdicts_and_the_cooldown_go_where_the_pipeline_is_told(spec: dict) -> None:
    """A step's pod (and its disk) ends with the step: the reports and the launch record that holds the
    cooldown reach each step as parameters, so a cluster keeps them in object storage."""
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert {"drift_reports", "quality_reports", "retrain_state"} <= set(params)
    assert params["scheduled"] == {"defaultValue": False, "isOptional": True, "parameterType": "BOOLEAN"}
    root = spec["root"]["dag"]["tasks"]
    given = {
        task: {n: p.get("componentInputParameter") for n, p in root[task]["inputs"]["parameters"].items()}
        for task in ("drift-check", "quality-check", "decide-retrain")
    }
    assert given["drift-check"]["reports_uri"] == "drift_reports"
    assert given["quality-check"]["reports_uri"] == "quality_reports"
    assert given["decide-retrain"]["scheduled"] == "scheduled"
    # retrain_state reaches trigger-retrain through both conditions
    assert root["condition-1"]["inputs"]["parameters"]["pipelinechannel--retrain_state"] == {
        "componentInputParameter": "retrain_state"
    }
    (trigger,) = spec["components"]["comp-condition-2"]["dag"]["tasks"].values()
    grow = spec["components"]["comp-condition-1"]["dag"]["tasks"]["grow"]
    for step in (grow, trigger):  # grow asks the cooldown first, trigger-retrain records the launch
        assert step["inputs"]["parameters"]["state_uri"] == {
            "componentInputParameter": "pipelinechannel--retrain_state"
        }


def test_a_scheduled_run_retrains_without_an_alarm_on_what_the_served_model_learnt_from() -> None:
    """The weekly run: both checks quiet (too few rows, too few labels), the decision still retrains,
    naming the schedule, from the served version and its dataset (the grow step grows that line)."""
    from aidetect.flows.monitoring import insufficient_verdict

    quiet = insufficient_verdict("m", "the window holds 12 usable rows, fewer than min_rows 200")
    too_few = {**LIVE, "status": "insufficient", "degraded": False, "reasons": [], "verdict_uri": ""}
    assert not retrain_decision(quiet, too_few)["retrain"]
    weekly = retrain_decision(quiet, too_few, scheduled=True)
    assert weekly["retrain"] and weekly["triggers"] == ["schedule"]
    assert weekly["reasons"] == ["schedule: periodic retrain on the newest grown version"]
    assert (weekly["model_version"], weekly["dataset_version"]) == ("3", "ds1")
    both = retrain_decision(DRIFT, LIVE, scheduled=True)
    assert (
        both["triggers"] == ["drift", "degradation", "schedule"]
        and both["verdict_uri"] == DRIFT["verdict_uri"]
    )
