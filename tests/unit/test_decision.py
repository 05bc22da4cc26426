"""The one decision rule: what evaluation certifies is what every consumer answers."""

from __future__ import annotations

import numpy as np
import pytest

from aidetect.decision import DecisionSpec, real_label_for
from aidetect.errors import DataError

THREE = ("real", "ai-generated", "deepfake")


def test_binary_fake_score_is_the_fake_column_exactly_whichever_column_is_real() -> None:
    probs = np.array([[0.2, 0.8], [0.9, 0.1]], np.float32)
    first_real = DecisionSpec(("REAL", "FAKE"), "REAL", 0.5)
    assert first_real.fake_score(probs).tolist() == probs[:, 1].tolist()
    assert first_real.names(first_real.decide(probs)) == ["FAKE", "REAL"]
    # labels in another column order: the authentic class is named, not assumed to be first
    second_real = DecisionSpec(("ai", "human"), "human", 0.5)
    assert second_real.fake_score(probs).tolist() == probs[:, 0].tolist()
    assert second_real.names(second_real.decide(probs)) == ["human", "ai"]


def test_several_fake_classes_threshold_the_summed_fake_score_then_take_the_likeliest_fake() -> None:
    probs = np.array([[0.45, 0.30, 0.25], [0.60, 0.05, 0.35], [0.2, 0.3, 0.5]])
    rule = DecisionSpec(THREE, "real", 0.5)
    # row 0: argmax says real (0.45), but the fake score 0.55 reaches 0.5 -> the likeliest fake class
    assert rule.names(rule.decide(probs)) == ["ai-generated", "real", "deepfake"]
    assert np.allclose(rule.fake_score(probs), 1 - probs[:, 0])
    assert rule.with_threshold(0.35).names(rule.with_threshold(0.35).decide(probs))[1] == "deepfake"
    assert rule.is_fake([0, 1, 2]).tolist() == [False, True, True]


def test_meta_round_trip_and_old_artifacts() -> None:
    rule = DecisionSpec(THREE, "real", 0.3)
    assert DecisionSpec.from_meta(rule.to_meta()) == rule
    # bundles written before real_label existed name the positive (fake) class of a binary model
    old = DecisionSpec.from_meta({"labels": ["FAKE", "REAL"], "positive_label": "FAKE", "threshold": 0.7})
    assert old.real_label == "REAL" and old.fake_label == "FAKE" and old.threshold == 0.7
    assert DecisionSpec.from_meta({"labels": ["a", "b", "c"]}).real_label == "a"


@pytest.mark.parametrize(
    ("labels", "real", "threshold", "message"),
    [
        (("a",), "a", 0.5, "2\\+ distinct"),
        (("a", "b"), "c", 0.5, "real_label"),
        (("a", "b"), "a", 1.5, "threshold"),
    ],
)
def test_bad_specs_are_refused_by_name(
    labels: tuple[str, ...], real: str, threshold: float, message: str
) -> None:
    with pytest.raises(DataError, match=message):
        DecisionSpec(labels, real, threshold)


def test_wrong_probability_shape_is_a_clear_error() -> None:
    with pytest.raises(DataError, match=r"\[N, 3\]"):
        DecisionSpec(THREE, "real").decide(np.zeros((2, 2)))


def test_real_label_defaults_to_the_first_and_must_exist() -> None:
    assert real_label_for(["REAL", "FAKE"]) == "REAL"
    assert real_label_for(["ai", "human"], "human") == "human"
    with pytest.raises(DataError):
        real_label_for(["ai", "human"], "person")
