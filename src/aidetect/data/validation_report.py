"""Write a validation result as JSON plus a human-readable Markdown report."""

from __future__ import annotations

import json
from typing import Any

from aidetect import paths, storage
from aidetect.data.validation import ValidationResult


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _examples(entry: dict[str, Any]) -> str:
    parts = []
    for ex in entry.get("examples", [])[:3]:
        if isinstance(ex, dict):
            parts.append(", ".join(f"{k}={v}" for k, v in ex.items()))
        else:
            parts.append(str(ex))
    return "; ".join(parts)


def render_markdown(result: ValidationResult) -> str:
    """The report a person reads: verdict, failed checks with example rows, duplicates, decode check."""
    verdict = "PASSED" if result.success else "FAILED"
    lines = [
        f"# Data validation: dataset version `{result.version_id}`",
        "",
        f"**{verdict}** ({len(result.critical_failures)} critical failures, {len(result.warnings)} warnings; "
        f"Great Expectations suite, {result.seconds:.1f} s)",
        "",
    ]
    if result.derived_version:
        lines += [
            f"Duplicates were dropped: this is derived version `{result.derived_version}` of "
            f"`{result.duplicates.get('parent')}`.",
            "",
        ]
    lines += ["| check | severity | result | unexpected | observed | examples |", "|---|---|---|---|---|---|"]
    for e in result.expectations:
        mark = "pass" if e["success"] else ("**FAIL**" if e["severity"] == "critical" else "warn")
        lines.append(
            f"| {_cell(e['name'])} | {e['severity']} | {mark} | {_cell(e.get('unexpected_count', ''))} "
            f"| {_cell(e.get('observed_value', ''))} | {_cell(_examples(e) if not e['success'] else '')} |"
        )
    d = result.duplicates
    lines += [
        "",
        "## Duplicate images",
        "",
        f"{d['groups']} groups of byte-identical images ({d['pairs']} pairs, "
        f"{d['extra_copies']} extra copies, {d['rows']} rows); policy: `{d['policy']}`.",
    ]
    for group in d.get("examples", []):
        lines.append(f"- {', '.join(f'`{s}`' for s in group)}")
    dec = result.decode
    lines += ["", "## Decode check", "", f"{dec['checked']} images decoded, {dec['failed']} failed."]
    for ex in dec.get("examples", []):
        lines.append(f"- `{ex['source']}`: {ex['error']}")
    lines += ["", "## Images per split and class", "", "| split | " + " | ".join(_labels(result)) + " |"]
    lines.append("|---|" + "---|" * len(_labels(result)))
    for split, row in result.counts.items():
        lines.append(f"| {split} | " + " | ".join(str(row.get(label, 0)) for label in _labels(result)) + " |")
    return "\n".join(lines) + "\n"


def _labels(result: ValidationResult) -> list[str]:
    seen: list[str] = []
    for row in result.counts.values():
        seen += [label for label in row if label not in seen]
    return seen


def default_report_dir(version_id: str) -> str:
    return str(paths.home() / "reports" / "validation" / version_id)


def write_reports(result: ValidationResult, out: str | None = None) -> dict[str, str]:
    """Write ``validation.json`` and ``validation.md`` under ``out`` (a folder or s3:// prefix)."""
    out = out or default_report_dir(result.version_id)
    json_uri = storage.join(out, "validation.json")
    md_uri = storage.join(out, "validation.md")
    storage.write_bytes(json_uri, (json.dumps(result.to_dict(), indent=2, default=str) + "\n").encode())
    storage.write_bytes(md_uri, render_markdown(result).encode())
    return {"json": json_uri, "markdown": md_uri}


def render_html(result: ValidationResult) -> str:
    """The Markdown report as one self-contained HTML page (pipeline UIs show HTML artifacts inline)."""
    from html import escape

    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark").enable("table").render(render_markdown(result))
    style = "body{font-family:sans-serif;max-width:60em;margin:1em auto}table{border-collapse:collapse}"
    style += "td,th{border:1px solid #ccc;padding:2px 6px}"
    title = escape(f"validation {result.version_id}")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{style}</style></head><body>{body}</body></html>"
    )
