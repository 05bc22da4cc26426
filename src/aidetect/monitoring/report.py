"""The operator report: one self-contained HTML page, one section per environment.

For each environment and each model it serves (the image model, and the text detector where the
environment pins one): the version its overlay pins (``aidetect.gitops.overlays.deployed_versions``),
that version's gate results (registry tag ``gate_status`` and ``reports/gate_report.json``), the latest
drift verdict for it (``aidetect drift check``) with links to the HTML report and the verdict, its live
quality on reviewers' labels with a plot over time (``aidetect quality check``), and the retraining
launches recorded for the model. Every source may be missing or unreachable: the page then says so in
that place instead of failing, so an operator always gets a page.

The HTML has no scripts and no external resources (it renders offline and in headless Chromium).
"""

from __future__ import annotations

import html
import json
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aidetect import storage
from aidetect.errors import AidetectError
from aidetect.monitoring import live_report
from aidetect.monitoring.check import read_latest
from aidetect.monitoring.config import DriftConfig
from aidetect.monitoring.retrain import Launch, load_launches, state_uri

GATE_REPORT_JSON = "reports/gate_report.json"
GATE_REPORT_MD = "reports/gate_report.md"


@dataclass
class GateFacts:
    status: str = "unknown"  # passed | failed | unknown
    checks: list[dict[str, Any]] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    note: str = ""


@dataclass
class EnvFacts:
    env: str
    model_name: str
    version: str
    uri: str
    weight: int | None = None
    gates: GateFacts = field(default_factory=GateFacts)
    drift: dict[str, Any] | None = None
    drift_note: str = ""
    quality: dict[str, Any] | None = None  # the latest `aidetect quality check` verdict for this version
    quality_note: str = ""
    modality: str = "image"  # "text": the environment's text detector (its drift is on text features)

    @property
    def label(self) -> str:
        """``staging`` for the image model, ``staging (text)`` for the text detector."""
        return self.env if self.modality == "image" else f"{self.env} ({self.modality})"


@dataclass
class ReportFacts:
    generated: str
    manifests_dir: str
    environments: list[EnvFacts]
    launches: list[Launch]
    notices: list[str]


def _deployed(manifests_dir: str) -> tuple[dict[str, dict[str, Any]], str]:
    try:
        from aidetect.gitops.overlays import deployed_versions
    except ImportError:
        return {}, "deployment state unavailable: aidetect.gitops is not installed"
    if not Path(manifests_dir).is_dir():
        return {}, f"deployment state unavailable: no manifests folder at {manifests_dir}"
    try:
        found = deployed_versions(manifests_dir)
    except AidetectError as exc:
        return {}, f"deployment state unavailable: {exc}"
    return found, "" if found else f"no environment overlays found under {manifests_dir}"


def _gates(name: str, version: str) -> GateFacts:
    from aidetect import registry

    try:
        info = registry.get_version(name, version)
    except AidetectError as exc:
        return GateFacts(note=f"registry: {exc}")
    facts = GateFacts(status=info.tags.get("gate_status", "unknown"), tags=dict(info.tags))
    with tempfile.TemporaryDirectory(prefix="aidetect-report-") as tmp:
        try:
            path = registry.download_artifacts(name, version, GATE_REPORT_JSON, tmp)
            report = json.loads(Path(path).read_text())
            facts.checks = list((report.get("gates") or {}).get("checks", []))
        except Exception as exc:  # MLflow raises its own types for a missing artifact
            facts.note = f"no {GATE_REPORT_JSON} ({type(exc).__name__})"
    return facts


def _served(env: str, pin: dict[str, Any], cfg: DriftConfig, modality: str = "image") -> EnvFacts:
    """One pinned model: its gates and latest drift verdict (unreachable sources become notes)."""
    facts = EnvFacts(env, str(pin["model_name"]), str(pin["version"]), str(pin["uri"]), pin.get("weight"))
    facts.modality = modality
    facts.gates = _gates(facts.model_name, facts.version)
    try:
        facts.drift = read_latest(cfg, facts.model_name, facts.version)
        if facts.drift is None:
            facts.drift_note = "no drift check recorded for this version yet"
    except (AidetectError, ValueError) as exc:
        facts.drift_note = f"drift verdicts unavailable: {exc}"
    facts.quality, facts.quality_note = live_report.latest(facts.model_name, facts.version)
    return facts


def gather(manifests_dir: str, cfg: DriftConfig) -> ReportFacts:
    """Collect everything the page shows; unreachable sources become notes, not errors."""
    deployed, notice = _deployed(manifests_dir)
    envs = []
    for env, pin in deployed.items():
        envs.append(_served(env, pin, cfg))
        if "text" in pin:
            envs.append(_served(env, pin["text"], cfg, modality="text"))
    notices = [notice] if notice else []
    try:
        launches = load_launches(state_uri(cfg.retrain))
    except AidetectError as exc:
        launches = []
        notices.append(f"retrain state unavailable: {exc}")
    return ReportFacts(
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        manifests_dir=str(manifests_dir),
        environments=envs,
        launches=launches,
        notices=notices,
    )


# -- rendering ------------------------------------------------------------------------------------------

CSS = """
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;background:#f4f6f8;
color:#1d2630}
header{background:#1d2b3a;color:#fff;padding:18px 32px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#b8c4d0;font-size:13px}header code{background:#2c3e50;color:#dfe6ee}
main{padding:20px 32px;max-width:1200px}
section{background:#fff;border:1px solid #d9e0e7;border-radius:8px;padding:16px 20px;margin:0 0 18px}
h2{margin:0 0 10px;font-size:19px}h3{margin:14px 0 6px;font-size:15px;color:#44515e}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600;font-size:13px;color:#fff}
.ok{background:#2e7d32}.bad{background:#c62828}.unknown{background:#6b7785}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:5px 8px;
border-bottom:1px solid #e6ebf0;vertical-align:top}th{color:#5b6875;font-weight:600}
.note{color:#8a5a00;background:#fff7e0;border:1px solid #f0dca0;border-radius:6px;padding:6px 10px;
margin:6px 0}
code{font-size:12px;background:#eef1f4;padding:1px 4px;border-radius:3px}a{color:#1565c0}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _link(uri: str, text: str) -> str:
    if not uri:
        return ""
    href = Path(uri).resolve().as_uri() if not storage.is_s3(uri) and "://" not in uri else uri
    return f'<a href="{_e(href)}">{_e(text)}</a>'


def _badge(state: str, good: set[str], bad: set[str]) -> str:
    cls = "ok" if state in good else "bad" if state in bad else "unknown"
    return f'<span class="badge {cls}">{_e(state)}</span>'


def _number(value: object) -> str:
    return "n/a" if value is None else f"{float(value):.4f}"  # type: ignore[arg-type]


def _gates_html(g: GateFacts) -> str:
    out = [f"<h3>Gates {_badge(g.status, {'passed'}, {'failed'})}</h3>"]
    lineage = [
        f"{k}: <code>{_e(g.tags[k])}</code>"
        for k in ("dataset_version", "git_commit", "run_id")
        if k in g.tags
    ]
    if lineage:
        out.append(f"<p>{' &middot; '.join(lineage)}</p>")
    if g.checks:
        rows = "".join(
            f"<tr><td>{_e(c.get('name'))}</td><td>{_e(c.get('metric'))}</td>"
            f"<td>{_e(_number(c.get('value')))}</td>"
            f"<td>{_e(c.get('op'))} {_e(c.get('limit'))}</td>"
            f"<td>{_badge('pass' if c.get('passed') else 'fail', {'pass'}, {'fail'})}</td></tr>"
            for c in g.checks
        )
        out.append(
            f"<table><tr><th>gate</th><th>metric</th><th>value</th><th>limit</th><th></th></tr>{rows}</table>"
        )
    if g.note:
        out.append(f'<div class="note">{_e(g.note)}</div>')
    return "".join(out)


def _drift_html(e: EnvFacts) -> str:
    d = e.drift
    if d is None:
        return (
            f'<h3>Drift {_badge("no verdict", set(), set())}</h3><div class="note">{_e(e.drift_note)}</div>'
        )
    state = "drift" if d.get("drift_detected") else "no drift"
    out = [f"<h3>Drift {_badge(state, {'no drift'}, {'drift'})}</h3>"]
    out.append(
        f"<p>checked {_e(d.get('checked_at', '?'))} over {_e(d.get('rows_current', '?'))} rows "
        f"(window {_e((d.get('window') or {}).get('since', '?'))}); drift share "
        f"{_e(round(float(d.get('drift_share', 0.0)), 3))} &middot; "
        f"{_link(d.get('report_uri', ''), 'HTML report')} &middot; "
        f"{_link(d.get('verdict_uri', ''), 'verdict JSON')}</p>"
    )
    if d.get("reasons"):
        out.append("<ul>" + "".join(f"<li>{_e(r)}</li>" for r in d["reasons"]) + "</ul>")
    top = sorted(d.get("features", []), key=lambda f: -float(f.get("strength", 0.0)))[:5]
    if top:
        rows = "".join(
            f"<tr><td>{_e(f['column'])}</td><td>{float(f.get('strength', 0.0)):.2f}</td>"
            f"<td>{_badge('drifted' if f.get('drifted') else 'stable', {'stable'}, {'drifted'})}</td></tr>"
            for f in top
        )
        out.append(f"<table><tr><th>top features</th><th>strength</th><th></th></tr>{rows}</table>")
    if d.get("retrain"):
        out.append(f"<p>retraining: {_e(d['retrain'].get('reason', ''))}</p>")
    return "".join(out)


def render_html(facts: ReportFacts) -> str:
    sections = []
    for e in facts.environments:
        weight = f" &middot; {e.weight}% of production traffic" if e.weight is not None else ""
        anchor = e.env if e.modality == "image" else f"{e.env}-{e.modality}"
        sections.append(
            f'<section id="env-{_e(anchor)}"><h2>{_e(e.label)}: {_e(e.model_name)} v{_e(e.version)}</h2>'
            f"<p>serving <code>{_e(e.uri)}</code>{weight}</p>{_gates_html(e.gates)}{_drift_html(e)}"
            f"{live_report.section_html(e.quality, e.quality_note)}</section>"
        )
    if not facts.environments:
        sections.append(
            "<section><h2>No environments</h2><p>No deployed version could be read.</p></section>"
        )
    if facts.launches:
        rows = "".join(
            f"<tr><td>{_e(x.at)}</td><td>{_e(x.model_name)} v{_e(x.model_version)}</td>"
            f"<td>{_badge(x.status, {'succeeded'}, {'failed'})}</td><td>{_e('; '.join(x.reasons))}</td></tr>"
            for x in reversed(facts.launches[-10:])
        )
        sections.append(
            "<section><h2>Retraining launches</h2><table><tr><th>when</th><th>model</th><th>status</th>"
            f"<th>why</th></tr>{rows}</table></section>"
        )
    notices = "".join(f'<div class="note">{_e(n)}</div>' for n in facts.notices)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>aidetect operator report</title><style>{CSS}</style></head><body>"
        f"<header><h1>aidetect operator report</h1><p>generated {_e(facts.generated)} from "
        f"<code>{_e(facts.manifests_dir)}</code></p></header><main>{notices}{''.join(sections)}</main></body></html>\n"
    )


def write_report(manifests_dir: str, cfg: DriftConfig, out: str) -> tuple[str, ReportFacts]:
    """Gather, render and write the page atomically to ``out`` (local path or ``s3://``)."""
    facts = gather(manifests_dir, cfg)
    storage.write_bytes(out, render_html(facts).encode())
    return out, facts
