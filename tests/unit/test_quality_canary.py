"""Canary analysis with live quality: a canary under the F1 gate over enough reviewers' labels is rolled
back; too few labels never are; with both tracks measured the promote reasons compare them."""

from __future__ import annotations

from dataclasses import replace

from aidetect.monitoring.canary import LiveQuality, TrackStats, decide
from aidetect.monitoring.config import CanaryConfig

TRACK = TrackStats(
    requests=1000.0, server_errors=0.0, p95_seconds=0.01, fake_probability_buckets=[(1.0, 1000.0)]
)
GOOD = LiveQuality(f1=0.95, labels=120, min_f1=0.9, min_labels=50)


def test_a_canary_under_the_live_gate_is_rolled_back() -> None:
    canary = replace(TRACK, live=replace(GOOD, f1=0.7, labels=80))
    verdict = decide(replace(TRACK, live=GOOD), canary, CanaryConfig())
    assert verdict.decision == "rollback"
    assert verdict.reasons == ["live F1 0.700 on 80 reviewers' labels (< 0.9 gate)"]


def test_too_few_labels_never_roll_back() -> None:
    canary = replace(TRACK, live=replace(GOOD, f1=0.2, labels=49))
    verdict = decide(replace(TRACK, live=GOOD), canary, CanaryConfig())
    assert verdict.decision == "promote"
    assert "live F1 0.200 vs stable 0.950 on reviewers' labels" in verdict.reasons


def test_without_live_metrics_the_decision_is_unchanged() -> None:
    verdict = decide(TRACK, TRACK, CanaryConfig())
    assert verdict.decision == "promote" and not any("live" in r for r in verdict.reasons)
