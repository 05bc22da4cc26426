"""The pipeline steps as plain functions over local paths: what each KFP component body calls.

No kfp import here: a KFP pod, ``kfp.local`` and tests run exactly these functions. Each step takes the
references written by the steps before it (small JSON files or folders) and returns a JSON-able dict that
the component maps onto KFP artifact metadata and metrics.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aidetect.errors import AidetectError

# Set by the local runner: each failing step writes {step, error} here so the run can name it in one line.
FAILURES_ENV = "AIDETECT_PIPELINE_FAILURES"


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically (parents created)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True, default=str)
    os.chmod(tmp, 0o644)
    os.replace(tmp, p)


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def flat_metadata(data: dict[str, Any]) -> dict[str, Any]:
    """The scalar entries of ``data`` (KFP metadata shows them in the UI); nested values as JSON text."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, (str, int, float, bool)) or value is None:
            out[key] = value
        else:
            out[key] = json.dumps(value, sort_keys=True, default=str)
    return out


def _record_failure(step: str, message: str) -> None:
    folder = os.environ.get(FAILURES_ENV)
    if folder:
        write_json(Path(folder) / f"{step}.json", {"step": step, "error": message})


def run_step(step: str, fn: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    """Run ``fn(**kwargs)``; on failure print ``error: step '<step>': <reason>``, record it, and re-raise."""
    try:
        return fn(**kwargs)
    except AidetectError as exc:
        message = str(exc)
    except Exception as exc:
        traceback.print_exc()
        message = f"{type(exc).__name__}: {exc}"
    print(f"error: step '{step}': {message}", file=sys.stderr, flush=True)
    _record_failure(step, message)
    raise SystemExit(1)


def _root(datasets_root: str) -> str | None:
    return datasets_root or None


# -- data ------------------------------------------------------------------------------------------


def ingest(data_uri: str, datasets_root: str) -> dict[str, Any]:
    """Ingest ``data_uri`` (folder, zip, parquet, s3://); the same content gives the same version id."""
    from aidetect.data.versions import ingest as ingest_source

    if not data_uri:
        raise AidetectError("data_uri is empty: name a folder, zip, parquet file or s3:// prefix")
    res = ingest_source(data_uri, root=_root(datasets_root))
    return {
        "version_id": res.version_id,
        "uri": res.uri,
        "root": datasets_root,
        "created": res.created,
        "counts": res.counts,
        "skipped": len(res.skipped),
    }


def _markdown_html(markdown: str, title: str) -> str:
    """A self-contained HTML page for a Markdown report (KFP's UI shows HTML artifacts inline)."""
    from html import escape

    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark").enable("table").render(markdown)
    style = "body{font-family:sans-serif;max-width:60em;margin:1em auto}table{border-collapse:collapse}"
    style += "td,th{border:1px solid #ccc;padding:2px 6px}"
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>" + (
        f"<style>{style}</style></head><body>{body}</body></html>"
    )


def validate(dataset_ref: dict[str, Any], report_path: str, out_path: str) -> dict[str, Any]:
    """Validate the version; write the HTML report; stop on critical failures.

    With the ``drop`` duplicates policy the suite derives a version without the extra copies: the
    reference written to ``out_path`` names the version the later steps must use.
    """
    from aidetect.data.validation import validate_version
    from aidetect.data.validation_report import render_markdown, write_reports

    result = validate_version(dataset_ref["version_id"], root=_root(dataset_ref.get("root", "")))
    write_reports(result)
    Path(report_path).parent.mkdir(parents=True, exist_ok=True)
    Path(report_path).write_text(_markdown_html(render_markdown(result), f"validation {result.version_id}"))
    result.raise_for_critical()
    ref = dict(dataset_ref)
    if result.derived_version:
        from aidetect.data.versions import open_version

        ref.update(version_id=result.derived_version, parent=dataset_ref["version_id"])
        ref["uri"] = open_version(result.derived_version, root=_root(ref.get("root", ""))).uri
    write_json(out_path, ref)
    metrics = {
        "expectations_failed": float(sum(1 for e in result.expectations if not e["success"])),
        "warnings": float(len(result.warnings)),
        "duplicate_rows": float(result.duplicates.get("rows", 0) or 0),
        "decode_failures": float(result.decode.get("failed", 0)),
    }
    return {"version_id": ref["version_id"], "metrics": metrics}
