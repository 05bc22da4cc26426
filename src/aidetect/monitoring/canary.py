"""Canary analysis: compare the canary track with stable on error rate, p95 latency and the distribution
of predictions, from Prometheus, and answer promote, hold or rollback with the reasons. When
``aidetect quality check`` has pushed live metrics for the version the canary serves, a live F1 under
the gate over enough reviewers' labels (the AidetectModelDegraded rule) is a rollback reason too.

Queries use the serving metrics fixed in docs/CONTRACTS.md and the ``track`` label the ServiceMonitors
set. Only server errors count against a track (a client's bad request is not the model's fault).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from aidetect.errors import AidetectError, ServiceUnavailableError
from aidetect.monitoring.config import CanaryConfig

PROMOTE, HOLD, ROLLBACK = "promote", "hold", "rollback"


class NoTrafficError(AidetectError):
    """A track served no requests in the window: there is nothing to compare."""


@dataclass
class LiveQuality:
    """``aidetect quality check``'s metrics for the version a track serves now (and its gate)."""

    f1: float
    labels: float
    min_f1: float
    min_labels: float

    @property
    def degraded(self) -> bool:
        """The alert's rule: F1 under the gate over enough labels."""
        return self.labels >= self.min_labels and self.f1 < self.min_f1


@dataclass
class TrackStats:
    """One track over the window."""

    requests: float
    server_errors: float
    p95_seconds: float | None
    fake_probability_buckets: list[tuple[float, float]] = field(default_factory=list)  # (le, cumulative)
    live: LiveQuality | None = None  # reviewers' labels on the version the track serves, when pushed

    @property
    def error_rate(self) -> float:
        return self.server_errors / self.requests if self.requests else 0.0


@dataclass
class Verdict:
    decision: str
    reasons: list[str]
    stable: TrackStats
    canary: TrackStats
    prediction_shift: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- Prometheus ----------------------------------------------------------------------------------


class Prometheus:
    """A minimal client for Prometheus' HTTP API (instant queries)."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def query(self, promql: str) -> list[dict[str, Any]]:
        try:
            resp = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(f"Prometheus at {self.url} is unreachable: {exc}") from None
        try:
            body = resp.json()
        except ValueError:
            raise ServiceUnavailableError(
                f"Prometheus at {self.url} answered HTTP {resp.status_code}, not JSON"
            ) from None
        if resp.status_code != 200 or body.get("status") != "success":
            raise AidetectError(
                f"Prometheus rejected the query {promql!r}: {body.get('error', resp.status_code)}"
            )
        return body["data"]["result"]

    def scalar(self, promql: str) -> float | None:
        """The single value of an aggregated query (None when there is no series or it is NaN)."""
        result = self.query(promql)
        if not result:
            return None
        value = float(result[0]["value"][1])
        return None if math.isnan(value) else value


def _matchers(cfg: CanaryConfig, track: str, extra: str = "") -> str:
    parts = [f'{cfg.track_label}="{track}"', cfg.selector.strip(), extra]
    return "{" + ",".join(p for p in parts if p) + "}"


def collect(prom: Prometheus, cfg: CanaryConfig, track: str) -> TrackStats:
    """Request count, server errors, p95 latency and the fake-probability histogram of one track."""
    w = cfg.window
    sel = _matchers(cfg, track)
    requests = prom.scalar(f"sum(increase(aidetect_requests_total{sel}[{w}]))") or 0.0
    failed = _matchers(cfg, track, 'status="server_error"')
    errors = prom.scalar(f"sum(increase(aidetect_requests_total{failed}[{w}]))")
    p95 = prom.scalar(
        f"histogram_quantile(0.95, sum by (le) (rate(aidetect_request_duration_seconds_bucket{sel}[{w}])))"
    )
    buckets = prom.query(f"sum by (le) (increase(aidetect_fake_probability_bucket{sel}[{w}]))")
    hist = sorted((float(b["metric"]["le"]), float(b["value"][1])) for b in buckets)
    return TrackStats(
        requests=requests,
        server_errors=errors or 0.0,
        p95_seconds=p95,
        fake_probability_buckets=hist,
        live=live_quality(prom, cfg, track),
    )


def live_quality(prom: Prometheus, cfg: CanaryConfig, track: str) -> LiveQuality | None:
    """The pushed live metrics of the version the track serves now (by ``aidetect_model_info``): a
    degraded one if any, else the one with most labels. None when no quality check covered it."""
    sel = _matchers(cfg, track)
    serving = f"max by (version, {cfg.track_label}) (aidetect_model_info{sel})"
    found: dict[str, dict[str, float]] = {}
    for stat in ("f1", "labels", "min_f1", "min_labels"):
        expr = f"max by (version) (aidetect_live_{stat}{sel} and on (version, {cfg.track_label}) {serving})"
        for r in prom.query(expr):
            found.setdefault(r["metric"]["version"], {})[stat] = float(r["value"][1])
    live = [LiveQuality(**v) for v in found.values() if len(v) == 4 and not math.isnan(v["f1"])]
    if not live:
        return None
    return next((q for q in live if q.degraded), max(live, key=lambda q: q.labels))


# --- the decision --------------------------------------------------------------------------------


def _bucket_shares(cumulative: list[tuple[float, float]]) -> dict[float, float]:
    """Cumulative histogram -> share of observations per bucket."""
    shares, previous = {}, 0.0
    for le, count in cumulative:
        shares[le] = max(count - previous, 0.0)
        previous = max(count, previous)
    total = sum(shares.values())
    return {le: v / total for le, v in shares.items()} if total > 0 else {}


def prediction_shift(stable: TrackStats, canary: TrackStats) -> float | None:
    """Jensen-Shannon distance (base 2, 0 = same, 1 = disjoint) of the two fake-probability histograms;
    None when a track has no predictions in the window."""
    p, q = _bucket_shares(stable.fake_probability_buckets), _bucket_shares(canary.fake_probability_buckets)
    if not p or not q:
        return None
    keys = sorted(set(p) | set(q))
    m = {k: (p.get(k, 0.0) + q.get(k, 0.0)) / 2 for k in keys}

    def kl(a: dict[float, float]) -> float:
        return sum(a[k] * math.log2(a[k] / m[k]) for k in keys if a.get(k, 0.0) > 0)

    return math.sqrt(max(0.0, (kl(p) + kl(q)) / 2))


def decide(stable: TrackStats, canary: TrackStats, cfg: CanaryConfig) -> Verdict:
    """Rollback when the canary is worse on any criterion; hold while a track lacks traffic; else promote."""
    for name, stats in (("stable", stable), ("canary", canary)):
        if stats.requests <= 0:
            raise NoTrafficError(
                f"the {name} track served no requests in the last {cfg.window}: nothing to compare",
                hint="check the traffic split and the ServiceMonitor's track label, or widen --window",
            )
    shift = prediction_shift(stable, canary)
    failures: list[str] = []
    increase = canary.error_rate - stable.error_rate
    if increase > cfg.max_error_rate_increase:
        failures.append(
            f"error rate {canary.error_rate:.2%} vs stable {stable.error_rate:.2%} "
            f"(+{increase:.2%} > {cfg.max_error_rate_increase:.2%} allowed)"
        )
    if canary.p95_seconds is not None and stable.p95_seconds is not None:
        slower_ms = (canary.p95_seconds - stable.p95_seconds) * 1000
        ratio = canary.p95_seconds / stable.p95_seconds if stable.p95_seconds > 0 else math.inf
        if ratio > cfg.max_p95_ratio and slower_ms > cfg.min_p95_increase_ms:
            failures.append(
                f"p95 latency {canary.p95_seconds * 1000:.0f} ms vs stable "
                f"{stable.p95_seconds * 1000:.0f} ms (x{ratio:.2f} > x{cfg.max_p95_ratio:.2f} allowed)"
            )
    if shift is not None and shift > cfg.max_prediction_shift:
        failures.append(
            f"fake-probability distribution shifted by {shift:.3f} (> {cfg.max_prediction_shift})"
        )
    if canary.live is not None and canary.live.degraded:
        failures.append(
            f"live F1 {canary.live.f1:.3f} on {canary.live.labels:.0f} reviewers' labels "
            f"(< {canary.live.min_f1} gate)"
        )
    if failures:
        return Verdict(ROLLBACK, failures, stable, canary, shift)
    short = [
        f"{name} served {stats.requests:.0f} of the {cfg.min_requests} requests needed"
        for name, stats in (("stable", stable), ("canary", canary))
        if stats.requests < cfg.min_requests
    ]
    if short:
        return Verdict(HOLD, [*short, "no criterion failed so far"], stable, canary, shift)
    reasons = [
        f"error rate {canary.error_rate:.2%} vs stable {stable.error_rate:.2%}",
        "p95 latency "
        + (
            f"{canary.p95_seconds * 1000:.0f} ms vs stable {stable.p95_seconds * 1000:.0f} ms"
            if canary.p95_seconds is not None and stable.p95_seconds is not None
            else "n/a"
        ),
        f"prediction shift {shift:.3f}" if shift is not None else "prediction shift n/a (no predictions)",
    ]
    if canary.live is not None and stable.live is not None:
        reasons.append(f"live F1 {canary.live.f1:.3f} vs stable {stable.live.f1:.3f} on reviewers' labels")
    return Verdict(PROMOTE, reasons, stable, canary, shift)


def analyze(cfg: CanaryConfig) -> Verdict:
    """Query Prometheus for both tracks and decide."""
    prom = Prometheus(cfg.prometheus_url, cfg.timeout_s)
    stable = collect(prom, cfg, cfg.stable_track)
    canary = collect(prom, cfg, cfg.canary_track)
    return decide(stable, canary, cfg)
