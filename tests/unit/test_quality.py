"""Live quality on a constructed log and label log whose metrics are known by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aidetect.feedback import quality
from aidetect.feedback.config import FeedbackConfig
from tests.helpers.quality import MODEL, NOW, Scenario, build, bundle_json


@pytest.fixture
def scenario(tmp_path: Path) -> Scenario:
    return build(tmp_path)


def _cfg(s: Scenario, **quality_fields: object) -> FeedbackConfig:
    cfg = FeedbackConfig()
    cfg.labels.root = str(s.labels_root)
    for k, v in quality_fields.items():
        setattr(cfg.quality, k, v)
    cfg.validate()
    return cfg


def _check(s: Scenario, tmp_path: Path, **quality_fields: object) -> dict:
    bundles = quality.bundle_at(str(bundle_json(tmp_path / "bundle")))
    return quality.run_check(
        MODEL, "3", _cfg(s, **quality_fields), log_uri=str(s.log_root), bundles=bundles, now=NOW
    )


def _group(verdict: dict, version: str, track: str) -> dict:
    (g,) = [g for g in verdict["groups"] if (g["version"], g["track"]) == (version, track)]
    return g


def test_metrics_per_version_and_track_match_the_hand_count(scenario: Scenario, tmp_path: Path) -> None:
    v = _check(scenario, tmp_path, min_labels=50, min_f1=0.8)
    stable = _group(v, "3", "stable")
    assert stable["n"] == 60  # the re-upload, unlabelled, sha-less, unknown-class and old rows excluded
    assert stable["accuracy"] == pytest.approx(scenario.accuracy)
    assert stable["f1"] == pytest.approx(scenario.f1)
    assert stable["precision"]["FAKE"] == pytest.approx(scenario.precision_fake)
    assert stable["recall"]["FAKE"] == pytest.approx(scenario.recall_fake)
    assert stable["recall"]["REAL"] == pytest.approx(scenario.recall_real)
    assert stable["ece"] == pytest.approx(scenario.ece)
    assert stable["confusion"] == [[27, 3], [6, 24]]  # rows: true REAL, FAKE; columns: predicted
    canary = _group(v, "4", "canary")
    assert canary["n"] == 20 and canary["accuracy"] == 1.0 and canary["status"] == "too few labels"
    assert v["counts"]["unknown_labels"] == 1 and v["counts"]["unknown_class"] == 0
    assert any("name no class of the model (CAT)" in n for n in v["notes"])
    days = [(p["start"][:10], p["n"]) for p in v["over_time"] if p["version"] == "3"]
    assert days == [("2026-12-02", 30), ("2026-12-04", 30)]
    assert v["status"] == "ok" and not v["degraded"] and v["retrain"] is None


def test_degraded_when_live_f1_is_under_the_gate(scenario: Scenario, tmp_path: Path) -> None:
    calls: list[dict] = []
    bundles = quality.bundle_at(str(bundle_json(tmp_path / "bundle")))
    verdict = quality.run_check(
        MODEL, "3", _cfg(scenario, min_labels=50, min_f1=0.9), log_uri=str(scenario.log_root),
        bundles=bundles, now=NOW, retrain=lambda v: calls.append(dict(v)) or {"action": "launched"},
    )  # fmt: skip
    assert verdict["status"] == "degraded" and verdict["degraded"]
    assert verdict["reasons"] == [f"degradation: live F1 {scenario.f1:.3f} < 0.9 over 60 labels (v3, stable)"]
    assert verdict["retrain"] == {"action": "launched"}
    assert len(calls) == 1 and calls[0]["verdict_uri"] == verdict["verdict_uri"]
    assert calls[0]["dataset_version"] == "ds-base" and calls[0]["reasons"][0].startswith("degradation")
    published = json.loads(Path(verdict["verdict_uri"]).read_text())
    assert published["status"] == "degraded" and published["retrain"] == {"action": "launched"}
    html = Path(verdict["reports"]["stable"]).read_text()
    assert "<html" in html.lower() and len(html) > 10_000
    latest = quality.read_latest(_cfg(scenario).quality, MODEL, "3")
    assert latest is not None and latest["verdict_uri"] == verdict["verdict_uri"]


def test_too_few_labels_is_no_verdict_and_never_a_retrain(scenario: Scenario, tmp_path: Path) -> None:
    bundles = quality.bundle_at(str(bundle_json(tmp_path / "bundle")))
    verdict = quality.run_check(
        MODEL, "3", _cfg(scenario, min_labels=61, min_f1=0.99), log_uri=str(scenario.log_root),
        bundles=bundles, now=NOW, retrain=lambda v: pytest.fail("no retrain without a verdict"),
    )  # fmt: skip
    assert verdict["status"] == "insufficient" and not verdict["degraded"]
    assert "verdict_uri" not in verdict
    assert quality.read_latest(_cfg(scenario).quality, MODEL) is None
    # the metrics still say how many labels there are (the alert needs min_labels of them)
    prom = quality.textfile_path().read_text()
    assert 'aidetect_live_labels{model="detector",track="stable",version="3"} 60.0' in prom
    assert 'aidetect_live_min_labels{model="detector",track="stable",version="3"} 61.0' in prom


def test_the_exposition_carries_every_group_and_class(scenario: Scenario, tmp_path: Path) -> None:
    _check(scenario, tmp_path, min_labels=50, min_f1=0.8)
    prom = quality.textfile_path().read_text()
    f1 = float(prom.split('aidetect_live_f1{model="detector",track="stable",version="3"} ')[1].split()[0])
    assert f1 == pytest.approx(0.842105, abs=1e-5)
    assert 'aidetect_live_accuracy{model="detector",track="canary",version="4"} 1.0' in prom
    assert 'aidetect_live_recall{class="FAKE",model="detector",track="stable",version="3"} 0.8' in prom
    assert 'aidetect_live_min_f1{model="detector",track="stable",version="3"} 0.8' in prom


def test_evidently_agrees_with_the_gate_metrics(scenario: Scenario, tmp_path: Path) -> None:
    from aidetect.decision import DecisionSpec

    spec = DecisionSpec(("REAL", "FAKE"), "REAL", 0.5)
    from aidetect.monitoring.window import read_window

    window = read_window(
        str(scenario.log_root), MODEL, since=quality.parse_duration("7d"), until=NOW,
        columns=["p_REAL", "p_FAKE"], optional=quality.OPTIONAL_COLUMNS,
    )  # fmt: skip
    joined = quality.join(window, quality.resolved_labels(_cfg(scenario), spec.labels).labels)
    rows = joined[(joined["model_version"] == "3") & joined["target"].isin(spec.labels)]
    values = {
        m["metric_name"].split("(")[0]: m["value"]
        for m in quality.evidently_snapshot(rows, spec).dict()["metrics"]
    }
    assert values["Accuracy"] == pytest.approx(scenario.accuracy)
    assert values["F1Score"] == pytest.approx(scenario.f1)
    assert values["RecallByLabel"]["REAL"] == pytest.approx(scenario.recall_real)


def test_a_log_written_before_the_closed_loop_joins_nothing(tmp_path: Path) -> None:
    from tests.helpers.quality import row, write_log

    old = [{k: v for k, v in row(i, 0.9, "3", "stable", NOW).items() if k not in ("sha256", "track", "kept")}
           for i in range(5)]  # fmt: skip
    write_log(tmp_path / "log", old)
    s = Scenario(tmp_path / "log", tmp_path / "labels")
    verdict = _check(s, tmp_path, min_labels=1)
    assert verdict["status"] == "insufficient" and verdict["counts"]["log_rows"] == 5
    assert verdict["groups"] == []


def test_a_class_nobody_labelled_is_null_not_nan(tmp_path: Path) -> None:
    from aidetect.feedback.labels import LabelLog, LabelRecord
    from tests.helpers.quality import row, sha, write_log

    write_log(tmp_path / "log", [row(i, 0.9 if i % 3 else 0.2, "3", "stable", NOW) for i in range(6)])
    LabelLog(str(tmp_path / "labels")).append([LabelRecord(sha(i), "FAKE", "import") for i in range(6)])
    verdict = _check(Scenario(tmp_path / "log", tmp_path / "labels"), tmp_path, min_labels=6, min_f1=0.5)
    g = _group(verdict, "3", "stable")
    assert g["recall"]["REAL"] is None and g["recall"]["FAKE"] == pytest.approx(4 / 6)
    json.dumps(verdict, allow_nan=False)  # strict JSON: a NaN would raise
    assert "NaN" in quality.textfile_path().read_text()  # Prometheus takes NaN as it is


@pytest.mark.parametrize("policy, counted", [("latest", 6), ("drop", 5)])
def test_conflicting_labels_follow_the_configured_policy(tmp_path: Path, policy: str, counted: int) -> None:
    from aidetect.feedback.labels import LabelLog, LabelRecord
    from tests.helpers.quality import row, sha, write_log

    write_log(tmp_path / "log", [row(i, 0.9, "3", "stable", NOW) for i in range(6)])
    log = LabelLog(str(tmp_path / "labels"))
    log.append([LabelRecord(sha(i), "fake", "import", author="a") for i in range(6)])  # spelled as typed
    log.append([LabelRecord(sha(0), "REAL", "review-page", author="b")])  # disagrees about image 0
    cfg = _cfg(Scenario(tmp_path / "log", tmp_path / "labels"), min_labels=1, min_f1=0.5)
    cfg.labels.conflict_policy = policy
    bundles = quality.bundle_at(str(bundle_json(tmp_path / "bundle")))
    verdict = quality.run_check(MODEL, "3", cfg, log_uri=str(tmp_path / "log"), bundles=bundles, now=NOW)
    g = _group(verdict, "3", "stable")
    assert g["n"] == counted and verdict["counts"]["conflicts"] == 1
    assert g["accuracy"] == pytest.approx(5 / 6 if policy == "latest" else 1.0)
    report = Path(verdict["reports"]["stable"]).read_text()
    if policy == "drop":  # every counted image is FAKE: Evidently cannot judge one class, the check goes on
        assert "could not build a report" in report and any(
            "no Evidently report" in n for n in verdict["notes"]
        )
    else:
        assert "could not build" not in report


def test_an_unreachable_pushgateway_loses_no_verdict(scenario: Scenario, tmp_path: Path) -> None:
    from aidetect.errors import ServiceUnavailableError
    from tests.helpers.servers import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServiceUnavailableError, match=r"Pushgateway \S+ unreachable"):
        _check(scenario, tmp_path, min_labels=50, min_f1=0.8, pushgateway_url=dead)
    latest = quality.read_latest(_cfg(scenario).quality, MODEL, "3")
    assert latest is not None and latest["status"] == "ok"  # published before the push
    assert "aidetect_live_f1" in quality.textfile_path().read_text()
