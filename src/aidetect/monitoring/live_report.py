"""The live-quality part of the operator report: a version's latest ``aidetect quality check`` verdict,
per track, and a plot of live F1 and accuracy over time.

The plot is inline SVG, so the page keeps its promise: no scripts, no external resources, renders
offline and in headless Chromium. A missing verdict or an unreadable store is a note, never a failure.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

from aidetect.errors import AidetectError

TRACK_COLOURS = {"stable": "#1565c0", "canary": "#ef6c00"}
W, H, PAD = 560, 170, 36  # plot size and the margin for the axes' labels


def latest(model_name: str, version: str) -> tuple[dict[str, Any] | None, str]:
    """The newest quality verdict that judged ``version``, or ``None`` and why."""
    from aidetect.config import load
    from aidetect.feedback.config import FeedbackConfig
    from aidetect.feedback.quality import read_latest

    try:
        verdict = read_latest(load(FeedbackConfig, "feedback").quality, model_name, version)
    except (AidetectError, ValueError) as exc:
        return None, f"live quality unavailable: {exc}"
    if verdict is None:
        return None, "no live quality verdict for this version yet (aidetect quality check)"
    return verdict, ""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def plot_svg(points: list[dict[str, Any]], min_f1: float) -> str:
    """Live F1 (solid) and accuracy (dashed) per track over time, the F1 gate as a red line."""
    if not points:
        return ""
    times = [datetime.fromisoformat(p["start"]).timestamp() for p in points]
    t0, span = min(times), (max(times) - min(times)) or 1.0

    def x(t: float) -> float:
        return PAD + (W - 2 * PAD) * ((t - t0) / span if len(set(times)) > 1 else 0.5)

    def y(v: float) -> float:
        return H - PAD / 2 - (H - PAD) * v

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
        'role="img" aria-label="live quality over time" style="font:11px sans-serif">',
        f'<line x1="{PAD}" y1="{y(min_f1):.1f}" x2="{W - PAD}" y2="{y(min_f1):.1f}" stroke="#c62828" '
        f'stroke-dasharray="4 3"><title>F1 gate {min_f1}</title></line>',
    ]
    for v in (0.0, 0.5, 1.0):
        parts.append(f'<text x="4" y="{y(v) + 4:.1f}" fill="#5b6875">{v:.1f}</text>')
        parts.append(f'<line x1="{PAD}" y1="{y(v):.1f}" x2="{W - PAD}" y2="{y(v):.1f}" stroke="#e6ebf0"/>')
    tracks = sorted({p["track"] for p in points})
    for i, track in enumerate(tracks):
        colour = TRACK_COLOURS.get(track, "#6b7785")
        mine = sorted((p for p in points if p["track"] == track), key=lambda p: p["start"])
        for stat, dash in (("f1", ""), ("accuracy", ' stroke-dasharray="5 3"')):
            xy = [(x(datetime.fromisoformat(p["start"]).timestamp()), y(p[stat])) for p in mine
                  if p.get(stat) is not None]  # fmt: skip
            line = " ".join(f"{a:.1f},{b:.1f}" for a, b in xy)
            parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        for p in mine:
            if p.get("f1") is not None:
                cx, cy = x(datetime.fromisoformat(p["start"]).timestamp()), y(p["f1"])
                tip = f"{track} {p['start'][:16]}: F1 {_num(p['f1'])}, accuracy {_num(p['accuracy'])}"
                parts.append(
                    f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{colour}">'
                    f"<title>{_e(tip)}, n {_e(p['n'])}</title></circle>"
                )
        parts.append(
            f'<text x="{PAD + 120 * i}" y="12" fill="{colour}">{_e(track)}: F1 — accuracy - -</text>'
        )
    first, last = min(p["start"] for p in points), max(p["start"] for p in points)
    parts.append(f'<text x="{PAD}" y="{H - 2}" fill="#5b6875">{_e(first[:10])}</text>')
    parts.append(f'<text x="{W - PAD}" y="{H - 2}" fill="#5b6875" text-anchor="end">{_e(last[:10])}</text>')
    return "".join(parts) + "</svg>"


def section_html(verdict: dict[str, Any] | None, note: str) -> str:
    """The report's "Live quality" block for one deployed version."""
    if verdict is None:
        badge = '<span class="badge unknown">no verdict</span>'  # one line: the page stays short
        return f'<p class="live-none"><b>Live quality</b> {badge} <small>{_e(note)}</small></p>'
    status = str(verdict.get("status", "unknown"))
    cls = {"ok": "ok", "degraded": "bad"}.get(status, "unknown")
    version = str(verdict.get("model_version"))
    limits = verdict.get("thresholds", {})
    since = (verdict.get("window") or {}).get("since", "?")
    out = [
        f'<h3>Live quality <span class="badge {cls}">{_e(status)}</span></h3>',
        f"<p>checked {_e(verdict.get('checked_at', '?'))} over the last {_e(since)} of predictions; "
        f"gate: F1 &ge; {_e(limits.get('min_f1'))} over &ge; {_e(limits.get('min_labels'))} labels</p>",
    ]
    groups = [g for g in verdict.get("groups", []) if str(g.get("version")) == version]
    if groups:
        rows = "".join(
            f"<tr><td>{_e(g['track'])}</td><td>{_e(g['n'])}</td><td>{_num(g['accuracy'])}</td>"
            f"<td>{_num(g['f1'])}</td><td>{_num(g['ece'])}</td><td>{_e(g['status'])}</td></tr>"
            for g in groups
        )
        out.append(
            "<table><tr><th>track</th><th>labels</th><th>accuracy</th><th>F1</th><th>ECE</th><th></th></tr>"
            f"{rows}</table>"
        )
    points = [p for p in verdict.get("over_time", []) if str(p.get("version")) == version]
    out.append(plot_svg(points, float(limits.get("min_f1", 0.0))))
    for reason in verdict.get("reasons", []):
        out.append(f'<div class="note">{_e(reason)}</div>')
    return "".join(out)
