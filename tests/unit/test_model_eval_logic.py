"""Threshold policies, metrics, slices and gates on hand-made predictions (no training)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aidetect.decision import DecisionSpec
from aidetect.errors import ConfigError
from aidetect.model.config import (
    GatesConfig,
    SlicesConfig,
    load_eval_config,
    load_gates_config,
    load_slices_config,
    load_train_config,
)
from aidetect.model.gates import evaluate_gates
from aidetect.model.metrics import classification_metrics, expected_calibration_error
from aidetect.model.slices import group_indices, resolution_bucket
from aidetect.model.threshold import choose_threshold

LABELS = ["REAL", "FAKE"]


def _rule(threshold: float, labels: list[str] = LABELS) -> DecisionSpec:
    return DecisionSpec(tuple(labels), labels[0], threshold)


def _binary(p_fake: list[float]) -> np.ndarray:
    p = np.asarray(p_fake, dtype=np.float64)
    return np.stack([1 - p, p], axis=1)


# ------------------------------------------------------------------ threshold policy


def test_max_f1_threshold_separates_when_possible() -> None:
    score = np.array([0.1, 0.2, 0.3, 0.35, 0.6, 0.9])
    is_fake = np.array([0, 0, 0, 1, 1, 1], bool)
    t = choose_threshold(score, is_fake, "max_f1")
    assert t == pytest.approx(0.35)
    assert classification_metrics(_binary(list(score)), is_fake.astype(int), _rule(t))["f1"] == 1.0
    # at the default 0.5 one fake is missed: the policy really changed the decision
    assert classification_metrics(_binary(list(score)), is_fake.astype(int), _rule(0.5))["f1"] < 1.0


def test_target_recall_is_the_highest_threshold_reaching_it() -> None:
    rng = np.random.default_rng(0)
    score = rng.random(1000)
    is_fake = rng.random(1000) < score  # informative but noisy
    for target in (0.5, 0.9, 0.99):
        t = choose_threshold(score, is_fake, "target_recall", target_recall=target)
        recall = (score[is_fake] >= t).mean()
        assert recall >= target
        higher = np.min(score[is_fake][score[is_fake] > t]) if (score[is_fake] > t).any() else 1.1
        assert (score[is_fake] >= higher).mean() < target  # any higher threshold misses the target


def test_threshold_falls_back_without_both_classes() -> None:
    assert choose_threshold(np.array([0.2, 0.9]), np.array([True, True]), "max_f1", fixed=0.42) == 0.42
    assert choose_threshold(np.array([0.2]), np.array([False]), "fixed", fixed=0.3) == 0.3


def test_eval_config_rejects_unknown_policy() -> None:
    with pytest.raises(ConfigError, match="threshold_policy: unknown 'best'"):
        load_eval_config(overrides={"threshold_policy": "best"})


# ------------------------------------------------------------------ metrics


def test_binary_metrics_match_a_hand_count() -> None:
    probs = _binary([0.9, 0.8, 0.3, 0.6, 0.1, 0.2])
    targets = np.array([1, 1, 1, 0, 0, 0])
    m = classification_metrics(probs, targets, _rule(0.5))
    assert m["confusion"] == [[2, 1], [1, 2]]
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["precision.FAKE"] == pytest.approx(2 / 3) and m["recall.FAKE"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3) and m["fake_recall"] == pytest.approx(2 / 3)
    assert m["roc_auc"] == pytest.approx(8 / 9)


def test_three_classes_decide_real_by_threshold_then_the_likeliest_fake() -> None:
    labels = ["real", "ai-generated", "deepfake"]
    probs = np.array([[0.7, 0.2, 0.1], [0.3, 0.3, 0.4], [0.1, 0.8, 0.1], [0.55, 0.05, 0.4]])
    assert _rule(0.5, labels).decide(probs).tolist() == [0, 2, 1, 0]
    assert _rule(0.4, labels).decide(probs).tolist() == [0, 2, 1, 2]  # fake score 0.45 >= 0.4
    m = classification_metrics(probs, np.array([0, 2, 1, 2]), _rule(0.4, labels))
    assert m["accuracy"] == 1.0 and m["recall.deepfake"] == 1.0 and m["f1"] == m["macro_f1"] == 1.0


def test_ece_is_zero_when_calibrated_and_large_when_overconfident() -> None:
    rng = np.random.default_rng(1)
    conf = rng.uniform(0.5, 1.0, 20000)
    correct = rng.random(20000) < conf
    targets = np.where(correct, 1, 0)
    probs = np.stack([1 - conf, conf], axis=1)
    assert expected_calibration_error(probs, targets) < 0.02
    wrong_half = np.where(rng.random(20000) < 0.5, 1, 0)
    over = np.tile([0.01, 0.99], (20000, 1))
    assert expected_calibration_error(over, wrong_half) > 0.4


# ------------------------------------------------------------------ slices


def test_slices_config_names_the_unknown_slice(tmp_path) -> None:
    bad = tmp_path / "slices.yaml"
    bad.write_text("perturbations: [jpeg_q50, sepia]\n")
    with pytest.raises(ConfigError, match=r"perturbations\[1\]: unknown slice 'sepia'"):
        load_slices_config(str(bad))
    bad.write_text("groups: [content_class, camera]\n")
    with pytest.raises(ConfigError, match=r"groups\[1\]: unknown slice 'camera'"):
        load_slices_config(str(bad))


def test_slice_groups_by_content_source_and_resolution() -> None:
    rows = pd.DataFrame(
        {
            "content_class": ["cat", "dog", "cat", None],
            "origin": ["coco", "diffusiondb", "coco", "imagenet"],
            "width": [32, 512, 300, 2000],
            "height": [32, 512, 200, 1500],
        }
    )
    groups = group_indices(rows, SlicesConfig())
    assert groups["content_class"]["cat"].tolist() == [0, 2]
    assert groups["content_class"]["unknown"].tolist() == [3]
    assert groups["source"]["coco"].tolist() == [0, 2]
    assert set(groups["resolution"]) == {"<=64px", "257-1024px", "65-256px", ">1024px"}
    assert resolution_bucket(300, 200, [64, 256, 1024]) == "65-256px"
    no_origin = group_indices(rows.assign(origin=None), SlicesConfig())
    assert "source" not in no_origin  # no information, no slice


def test_in_a_grown_version_the_fairness_families_group_the_base_rows_only() -> None:
    rows = pd.DataFrame(
        {
            "content_class": ["cat", "dog", None, None, "cat"],
            "origin": ["cifake", "cifake", "fb-1", "fb-1", "cifake"],
            "width": [32, 32, 512, 512, 32],
            "height": [32, 32, 512, 512, 32],
            "provenance": ["base", "base", "feedback", "feedback", "base"],
        }
    )
    groups = group_indices(rows, SlicesConfig())
    assert {k: v.tolist() for k, v in groups["content_class"].items()} == {"cat": [0, 4], "dog": [1]}
    assert set(groups["source"]) == {"cifake"} and set(groups["resolution"]) == {"<=64px"}
    assert {k: v.tolist() for k, v in groups["provenance"].items()} == {"base": [0, 1, 4], "feedback": [2, 3]}


# ------------------------------------------------------------------ gates


def _metrics(**over: float) -> dict:
    base = {"accuracy": 0.97, "f1": 0.97, "roc_auc": 0.99, "ece": 0.02, "fake_recall": 0.96}
    return {**base, **over}


def _slices(cat: float = 0.95, dog: float = 0.94, n: int = 100) -> dict:
    return {"content_class": {"cat": {"n": n, "accuracy": cat}, "dog": {"n": n, "accuracy": dog}}}


def test_gates_pass_when_every_check_holds() -> None:
    r = evaluate_gates(GatesConfig(), _metrics(), _slices(), {"blur": {"accuracy": 0.9}}, None)
    assert r["passed"] and r["failures"] == []
    assert any("regression gate skipped" in n for n in r["notes"])
    kinds = {c["kind"] for c in r["checks"]}
    assert {"absolute", "slice", "slice_gap", "perturbation"} <= kinds


@pytest.mark.parametrize(
    ("metrics", "slices", "perturbed", "expected"),
    [
        (_metrics(f1=0.8), _slices(), {}, "min f1: f1 0.8000 < 0.9000"),
        (_metrics(ece=0.2), _slices(), {}, "max ece: ece 0.2000 > 0.0500"),
        (_metrics(), _slices(0.86, 0.9), {}, "slice content_class=cat: accuracy 0.8600 < 0.8800 (n=100)"),
        (_metrics(), _slices(0.99, 0.89), {}, "gap content_class: accuracy 0.1000 > 0.0500 (cat vs dog)"),
        (_metrics(), _slices(), {"blur": {"accuracy": 0.6}}, "perturbation blur: accuracy 0.6000 < 0.7000"),
    ],
)
def test_gates_fail_for_the_right_reason(metrics: dict, slices: dict, perturbed: dict, expected: str) -> None:
    cfg = GatesConfig()
    cfg.slices.min, cfg.slices.max_gap, cfg.perturbations.min = 0.88, 0.05, 0.7
    r = evaluate_gates(cfg, metrics, slices, perturbed, None)
    assert not r["passed"]
    assert r["failures"] == [expected]


def test_small_slices_are_not_gated() -> None:
    cfg = GatesConfig()
    cfg.slices.min = 0.9
    r = evaluate_gates(cfg, _metrics(), _slices(cat=0.2, n=5), {}, None)
    assert r["passed"]


def test_regression_against_the_champion() -> None:
    champion = {"version": "3", "metrics": {"f1": 0.98, "roc_auc": 0.99}}
    worse = evaluate_gates(GatesConfig(), _metrics(f1=0.96), _slices(), {}, champion)
    assert worse["failures"] == ["no regression f1: f1 0.9600 < 0.9750 (champion v3 0.9800)"]
    within = evaluate_gates(GatesConfig(), _metrics(f1=0.977), _slices(), {}, champion)
    assert within["passed"]


def test_gates_config_names_bad_fields(tmp_path) -> None:
    f = tmp_path / "gates.yaml"
    f.write_text("min: {f2: 0.9}\n")
    with pytest.raises(ConfigError, match=r"min\.f2: unknown metric 'f2'"):
        load_gates_config(str(f))
    f.write_text("slices: {families: [content_class, weather]}\n")
    with pytest.raises(ConfigError, match=r"slices.families\[1\]: unknown slice 'weather'"):
        load_gates_config(str(f))
    f.write_text("min: {recall.deepfake: 0.9}\n")
    cfg = load_gates_config(str(f))  # per-label names are checked against the model's labels
    cfg.check_labels(["real", "ai-generated", "deepfake"])
    with pytest.raises(ConfigError, match=r"min\.recall\.deepfake: metric 'recall\.deepfake' names label"):
        cfg.check_labels(["REAL", "FAKE"])


# ------------------------------------------------------------------ training config


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"arch": "vgg99"}, "arch: unknown model 'vgg99'"),
        ({"lr": -0.1}, "lr: must be positive"),
        ({"epochs": 0}, "epochs: must be positive"),
        ({"label_smoothing": 1.5}, "label_smoothing"),
        ({"augment": {"jpeg_p": 2}}, "augment.jpeg_p"),
        ({"augment": {"translate_px": -1}}, "augment.translate_px"),
        ({"batchsize": 3}, "batchsize: unknown field"),
    ],
)
def test_train_config_names_the_bad_field(overrides: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        load_train_config(overrides=overrides)


def test_presets_merge_over_defaults() -> None:
    cfg = load_train_config("ci-tiny", overrides={"epochs": 3})
    assert cfg.arch == "compact_s" and cfg.epochs == 3 and cfg.augment.jpeg_quality == [50, 95]
    with pytest.raises(ConfigError, match="preset: unknown 'nope'"):
        load_train_config("nope")
