"""Quality gates declared in YAML, checked against an evaluation; a report as JSON and Markdown.

Gates: absolute minimums/maximums on headline metrics, per-slice minimums and the largest allowed gap
between the groups of a slice family, minimums under perturbations, and no regression against the
model holding the ``production`` alias on the same evaluation data.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from aidetect import config
from aidetect.errors import ConfigError

METRICS = (
    "accuracy",
    "f1",
    "macro_f1",
    "fake_recall",
    "fake_precision",
    "fake_f1",
    "roc_auc",
    "pr_auc",
    "ece",
)
_PER_LABEL = re.compile(r"^(precision|recall|f1)\.(.+)$")
LOWER_IS_BETTER = {"ece"}


def check_metric_name(name: str, field_name: str, labels: list[str] | None = None) -> None:
    m = _PER_LABEL.match(name)
    if m:
        if labels is not None and m.group(2) not in labels:
            raise ConfigError(f"{field_name}: metric {name!r} names label {m.group(2)!r}, not in {labels}")
        return
    if name not in METRICS:
        known = ", ".join(METRICS) + ", precision.<label>, recall.<label>, f1.<label>"
        raise ConfigError(f"{field_name}: unknown metric {name!r} (known: {known})")


@dataclass
class SliceGate:
    metric: str = "accuracy"
    min: float = 0.0  # every group with at least min_count images
    max_gap: float = 1.0  # best group minus worst group, per family
    min_count: int = 30
    families: list[str] = field(default_factory=lambda: ["content_class", "source", "resolution"])


@dataclass
class PerturbationGate:
    metric: str = "accuracy"
    min: float = 0.0
    max_drop: float = 1.0  # clean metric minus perturbed metric


@dataclass
class RegressionGate:
    enabled: bool = True
    alias: str = "production"
    metrics: list[str] = field(default_factory=lambda: ["f1", "roc_auc"])
    tolerance: float = 0.005  # allowed drop against the champion


@dataclass
class GatesConfig:
    """``configs/gates.yaml``."""

    min: dict[str, float] = field(default_factory=lambda: {"accuracy": 0.9, "f1": 0.9, "roc_auc": 0.95})
    max: dict[str, float] = field(default_factory=lambda: {"ece": 0.05})
    slices: SliceGate = field(default_factory=SliceGate)
    perturbations: PerturbationGate = field(default_factory=PerturbationGate)
    regression: RegressionGate = field(default_factory=RegressionGate)

    def validate(self) -> None:
        for kind in ("min", "max"):
            for name, value in getattr(self, kind).items():
                check_metric_name(name, f"{kind}.{name}")
                try:
                    float(value)
                except (TypeError, ValueError):
                    raise ConfigError(f"{kind}.{name}: expected a number, got {value!r}") from None
        check_metric_name(self.slices.metric, "slices.metric")
        check_metric_name(self.perturbations.metric, "perturbations.metric")
        for i, m in enumerate(self.regression.metrics):
            check_metric_name(m, f"regression.metrics[{i}]")
        from aidetect.model.slices import GROUP_COLUMNS

        for i, fam in enumerate(self.slices.families):
            if fam not in GROUP_COLUMNS:
                raise ConfigError(
                    f"slices.families[{i}]: unknown slice {fam!r} (known: {', '.join(GROUP_COLUMNS)})"
                )
        if self.slices.min_count < 1 or self.regression.tolerance < 0:
            raise ConfigError("slices.min_count (>= 1) / regression.tolerance (>= 0): out of range")

    def check_labels(self, labels: list[str]) -> None:
        """Per-label metrics must name labels of the model being gated."""
        for kind in ("min", "max"):
            for name in getattr(self, kind):
                check_metric_name(name, f"{kind}.{name}", labels)


def load_gates_config(path: str | None = None) -> GatesConfig:
    return config.load(GatesConfig, "gates", path=path)


@dataclass
class Check:
    name: str
    kind: str  # absolute | slice | slice_gap | perturbation | regression
    metric: str
    value: float | None
    limit: float
    op: str  # ">=" or "<="
    passed: bool
    detail: str = ""

    def reason(self) -> str:
        v = "n/a" if self.value is None else f"{self.value:.4f}"
        bad = "<" if self.op == ">=" else ">"
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.name}: {self.metric} {v} {bad} {self.limit:.4f}{detail}"


def _cmp(value: float | None, limit: float, op: str) -> bool:
    if value is None or value != value:  # missing or NaN never passes
        return False
    return value >= limit if op == ">=" else value <= limit


def evaluate_gates(
    cfg: GatesConfig,
    metrics: dict[str, Any],
    slices: dict[str, dict[str, dict[str, Any]]],
    perturbed: dict[str, dict[str, Any]],
    champion: dict[str, Any] | None,
) -> dict[str, Any]:
    """All checks and the verdict; ``champion`` is ``{"version", "metrics"}`` or None (no champion)."""
    checks: list[Check] = []
    for name, limit in cfg.min.items():
        checks.append(Check(f"min {name}", "absolute", name, metrics.get(name), float(limit), ">=", False))
    for name, limit in cfg.max.items():
        checks.append(Check(f"max {name}", "absolute", name, metrics.get(name), float(limit), "<=", False))
    sg = cfg.slices
    for family in sg.families:
        groups = {g: m for g, m in slices.get(family, {}).items() if m["n"] >= sg.min_count}
        values = {g: m.get(sg.metric) for g, m in groups.items()}
        values = {g: v for g, v in values.items() if v is not None and v == v}
        for g, v in values.items():
            checks.append(
                Check(
                    f"slice {family}={g}", "slice", sg.metric, v, sg.min, ">=", False, f"n={groups[g]['n']}"
                )
            )
        if len(values) >= 2:
            hi, lo = max(values, key=values.__getitem__), min(values, key=values.__getitem__)
            gap = values[hi] - values[lo]
            checks.append(
                Check(f"gap {family}", "slice_gap", sg.metric, gap, sg.max_gap, "<=", False, f"{hi} vs {lo}")
            )
    pg = cfg.perturbations
    clean = metrics.get(pg.metric)
    for name, m in perturbed.items():
        v = m.get(pg.metric)
        checks.append(Check(f"perturbation {name}", "perturbation", pg.metric, v, pg.min, ">=", False))
        if clean is not None and v is not None:
            checks.append(
                Check(f"drop under {name}", "perturbation", pg.metric, clean - v, pg.max_drop, "<=", False)
            )
    rg = cfg.regression
    if rg.enabled and champion is not None:
        for name in rg.metrics:
            cand, champ = metrics.get(name), champion["metrics"].get(name)
            lower = name in LOWER_IS_BETTER
            limit = (champ + rg.tolerance) if lower else (champ - rg.tolerance)
            detail = f"champion v{champion['version']} {champ:.4f}"
            checks.append(
                Check(
                    f"no regression {name}",
                    "regression",
                    name,
                    cand,
                    limit,
                    "<=" if lower else ">=",
                    False,
                    detail,
                )
            )
    for c in checks:
        c.passed = _cmp(c.value, c.limit, c.op)
    failures = [c.reason() for c in checks if not c.passed]
    notes = []
    if rg.enabled and champion is None:
        notes.append(f"no model holds the {rg.alias!r} alias: regression gate skipped")
    return {
        "passed": not failures,
        "failures": failures,
        "notes": notes,
        "checks": [asdict(c) for c in checks],
    }
