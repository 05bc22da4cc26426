"""Quality gates declared in YAML, checked against an evaluation; a report as JSON and Markdown.

Gates: absolute minimums/maximums on headline metrics, per-slice minimums and the largest allowed gap
between the groups of a slice family, minimums under perturbations, and no regression against the
model holding the ``production`` alias on the same evaluation data, and, for a grown version, on its
base and its feedback images separately (the ``provenance`` slice).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from aidetect.model.config import LOWER_IS_BETTER, GatesConfig


@dataclass
class Check:
    name: str
    kind: str  # absolute | slice | slice_gap | perturbation | regression | feedback
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
    notes: list[str] = []
    checks += _feedback_checks(cfg, slices.get("provenance", {}), champion, notes)
    for c in checks:
        c.passed = _cmp(c.value, c.limit, c.op)
    failures = [c.reason() for c in checks if not c.passed]
    if rg.enabled and champion is None:
        notes.append(f"no model holds the {rg.alias!r} alias: regression gate skipped")
    return {
        "passed": not failures,
        "failures": failures,
        "notes": notes,
        "checks": [asdict(c) for c in checks],
    }


def _feedback_checks(
    cfg: GatesConfig, groups: dict[str, dict[str, Any]], champion: dict[str, Any] | None, notes: list[str]
) -> list[Check]:
    """A grown version: the feedback slice reaches the floor, and neither the base nor the feedback slice
    is worse than the champion's by more than the tolerance (forgot the old / did not learn the new)."""
    fg = cfg.feedback
    fb = groups.get("feedback")
    if not fg.enabled or not groups:
        return []
    if fb is None or fb["n"] < fg.min_count:
        n = 0 if fb is None else fb["n"]
        notes.append(f"{n} feedback images in the evaluation split (< {fg.min_count}): feedback gate skipped")
        return []
    out = [
        Check("feedback floor", "feedback", fg.metric, fb.get(fg.metric), fg.min, ">=", False, f"n={fb['n']}")
    ]
    champ_groups = (champion or {}).get("slices", {}).get("provenance", {})
    if champion is None or not champ_groups:
        notes.append("no champion measured on the provenance slice: feedback comparison skipped")
        return out
    lower = fg.metric in LOWER_IS_BETTER
    for group in ("base", "feedback"):
        mine, theirs = groups.get(group), champ_groups.get(group)
        if mine is None or theirs is None or theirs.get(fg.metric) is None:
            continue
        champ = float(theirs[fg.metric])
        limit = champ + fg.tolerance if lower else champ - fg.tolerance
        detail = f"champion v{champion['version']} {champ:.4f}, n={mine['n']}"
        name = f"no regression on {group}"
        out.append(
            Check(
                name,
                "feedback",
                fg.metric,
                mine.get(fg.metric),
                limit,
                "<=" if lower else ">=",
                False,
                detail,
            )
        )
    return out
