"""The canary decision on given track statistics: each criterion can fail on its own, hold waits for
traffic, no traffic is refused, and the config rejects nonsense."""

from __future__ import annotations

import math

import pytest

from aidetect.errors import ConfigError
from aidetect.monitoring.canary import NoTrafficError, TrackStats, decide, prediction_shift
from aidetect.monitoring.config import CanaryConfig, load_canary_config

LE = [0.25, 0.5, 0.75, 1.0, math.inf]


def stats(requests=1000.0, errors=0.0, p95=0.010, shares=(0.4, 0.2, 0.2, 0.2, 0.0)) -> TrackStats:
    cumulative, total = [], 0.0
    for le, share in zip(LE, shares, strict=True):
        total += share * requests
        cumulative.append((le, total))
    return TrackStats(
        requests=requests, server_errors=errors, p95_seconds=p95, fake_probability_buckets=cumulative
    )


CFG = CanaryConfig()


def test_equal_tracks_promote() -> None:
    verdict = decide(stats(), stats(), CFG)
    assert verdict.decision == "promote"
    assert verdict.prediction_shift == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(
    ("canary", "reason"),
    [
        (stats(errors=30.0), "error rate 3.00% vs stable 0.00%"),
        (stats(p95=0.200), "p95 latency 200 ms vs stable 10 ms"),
        (stats(shares=(0.0, 0.0, 0.2, 0.4, 0.4)), "fake-probability distribution shifted"),
    ],
)
def test_each_criterion_alone_rolls_back(canary: TrackStats, reason: str) -> None:
    verdict = decide(stats(), canary, CFG)
    assert verdict.decision == "rollback"
    assert len(verdict.reasons) == 1 and verdict.reasons[0].startswith(reason), verdict.reasons


def test_small_differences_stay_within_thresholds() -> None:
    # +0.5 points of errors, 1.4x slower, and a slight shift in predictions: all allowed
    canary = stats(errors=5.0, p95=0.014, shares=(0.38, 0.22, 0.2, 0.2, 0.0))
    assert decide(stats(), canary, CFG).decision == "promote"


def test_a_slower_canary_on_tiny_latencies_is_noise() -> None:
    # 3x slower but only 4 ms more: below min_p95_increase_ms
    assert decide(stats(p95=0.002), stats(p95=0.006), CFG).decision == "promote"


def test_little_traffic_holds_but_failures_still_roll_back() -> None:
    verdict = decide(stats(), stats(requests=50.0), CFG)
    assert verdict.decision == "hold"
    assert "canary served 50 of the 200 requests needed" in verdict.reasons[0]
    assert decide(stats(), stats(requests=50.0, errors=25.0), CFG).decision == "rollback"


def test_no_traffic_is_refused() -> None:
    with pytest.raises(NoTrafficError, match="canary track served no requests"):
        decide(stats(), stats(requests=0.0), CFG)
    with pytest.raises(NoTrafficError, match="stable track"):
        decide(stats(requests=0.0), stats(), CFG)


def test_prediction_shift_bounds() -> None:
    disjoint = prediction_shift(stats(shares=(1, 0, 0, 0, 0)), stats(shares=(0, 0, 0, 0, 1)))
    assert disjoint == pytest.approx(1.0)
    assert prediction_shift(stats(), TrackStats(10, 0, 0.01, [])) is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("window", "ten minutes", "window"),
        ("max_p95_ratio", 0.5, "max_p95_ratio"),
        ("canary_track", "stable", "canary_track"),
    ],
)
def test_config_rejects_bad_values(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_canary_config(overrides={field: value})


def test_repo_config_loads() -> None:
    cfg = load_canary_config()
    assert cfg.track_label == "track" and cfg.window == "10m"
