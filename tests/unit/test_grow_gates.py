"""Gates on a grown version: a challenger that forgets the base or does not learn the feedback is refused."""

from __future__ import annotations

from typing import Any

from aidetect.model.config import FeedbackGate, GatesConfig, RegressionGate
from aidetect.model.gates import evaluate_gates
from aidetect.model.report import gate_markdown


def slices(base: float, feedback: float, n_feedback: int = 40) -> dict[str, dict[str, dict[str, Any]]]:
    return {
        "provenance": {
            "base": {"n": 1000, "accuracy": base},
            "feedback": {"n": n_feedback, "accuracy": feedback},
        }
    }


def cfg(**feedback: Any) -> GatesConfig:
    return GatesConfig(
        min={},
        max={},
        regression=RegressionGate(enabled=True, metrics=[]),
        feedback=FeedbackGate(min=0.8, tolerance=0.01, min_count=10, **feedback),
    )


def champion(base: float, feedback: float) -> dict[str, Any]:
    return {"version": "1", "metrics": {}, "slices": slices(base, feedback)}


def verdict(challenger: dict[str, Any], champ: dict[str, Any] | None, **kw: Any) -> dict[str, Any]:
    return evaluate_gates(cfg(**kw), {}, challenger, {}, champ)


def test_a_challenger_that_learns_the_new_and_keeps_the_old_passes() -> None:
    v = verdict(slices(0.975, 0.92), champion(0.978, 0.60))
    assert v["passed"], v["failures"]
    names = {c["name"] for c in v["checks"] if c["kind"] == "feedback"}
    assert names == {"feedback floor", "no regression on base", "no regression on feedback"}


def test_a_challenger_that_forgets_the_base_is_refused() -> None:
    v = verdict(slices(0.90, 0.95), champion(0.978, 0.60))
    assert not v["passed"]
    assert [f for f in v["failures"] if f.startswith("no regression on base")]


def test_a_challenger_that_does_not_learn_the_feedback_is_refused() -> None:
    v = verdict(slices(0.978, 0.62), champion(0.978, 0.60))
    assert not v["passed"]
    assert [f for f in v["failures"] if f.startswith("feedback floor")]
    worse = verdict(slices(0.978, 0.85), champion(0.978, 0.90))  # above the floor, below the champion
    assert [f for f in worse["failures"] if f.startswith("no regression on feedback")]


def test_too_few_feedback_images_or_no_provenance_skips_with_a_note() -> None:
    v = verdict(slices(0.98, 0.1, n_feedback=3), champion(0.98, 0.6))
    assert v["passed"] and any("feedback gate skipped" in n for n in v["notes"])
    plain = evaluate_gates(cfg(), {}, {"source": {"a": {"n": 50, "accuracy": 0.99}}}, {}, None)
    assert plain["passed"] and not [c for c in plain["checks"] if c["kind"] == "feedback"]
    off = verdict(slices(0.5, 0.1), champion(0.98, 0.6), enabled=False)
    assert off["passed"]


def test_without_a_champion_the_floor_still_holds() -> None:
    v = verdict(slices(0.98, 0.5), None)
    assert not v["passed"] and any("feedback floor" in f for f in v["failures"])


def test_the_gate_report_shows_base_and_feedback_for_both_models() -> None:
    ours, champ = slices(0.975, 0.92), champion(0.978, 0.60)
    report = {
        "gates": verdict(ours, champ),
        "dataset_version": "abc",
        "eval_split": "test",
        "metrics": {"n": 1040},
        "model": {"arch": "compact", "input_size": 32},
        "labels": ["REAL", "FAKE"],
        "threshold": 0.5,
        "threshold_policy": "max_f1",
        "champion": champ,
        "slices": {
            "provenance": {g: {**m, "f1": 0.9, "fake_recall": 0.9} for g, m in ours["provenance"].items()}
        },
        "perturbations": {},
    }
    md = gate_markdown(report)
    assert "### Base and feedback images" in md
    assert "| base | 1000 | 0.9750 | 0.9780 |" in md and "| feedback | 40 | 0.9200 | 0.6000 |" in md
