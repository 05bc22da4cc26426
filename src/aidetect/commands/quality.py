"""``aidetect quality``: how accurate the served model is on reviewers' labels (live quality)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

EXIT_DEGRADED = 4  # only with --fail-on-degradation; 3 means "too few labels: no verdict"
EXIT_NO_VERDICT = 3


@click.group()
def quality() -> None:
    """Live quality: labels joined with the logged predictions, per model version and track."""


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def table(verdict: dict[str, Any]) -> str:
    """One line per (version, track): labels, accuracy, F1, ECE, precision/recall per class, status."""
    from aidetect.commands._tables import format_table

    classes = sorted({c for g in verdict["groups"] for c in g["labels"]})
    rows = [["version", "track", "labels", "accuracy", "f1", "ece", *[f"P/R {c}" for c in classes], "status"]]
    for g in verdict["groups"]:
        pr = [f"{_pct(g['precision'].get(c))}/{_pct(g['recall'].get(c))}" for c in classes]
        rows.append(
            [g["version"], g["track"], str(g["n"]), _pct(g["accuracy"]), _pct(g["f1"]), _pct(g["ece"]), *pr,
             g["status"]]
        )  # fmt: skip
    confusion = [
        f"confusion v{g['version']} {g['track']} (rows: true {', '.join(g['labels'])}; columns: predicted): "
        f"{g['confusion']}"
        for g in verdict["groups"]
        if str(g["version"]) == str(verdict["model_version"])
    ]
    return "\n".join([format_table(rows), *confusion])


@quality.command()
@click.option(
    "--model", "model", required=True, help="Judged version: 3, production, NAME/3 or NAME@production."
)
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="A feedback.yaml to use.")
@click.option("--since", help="Window of logged predictions, e.g. 1d, 7d (default from config).")
@click.option("--log-uri", help="Inference log root (folder or s3://; default: drift.yaml's log_uri).")
@click.option("--reports-uri", help="Where verdicts and Evidently reports go (folder or s3://).")
@click.option("--bundle", "bundle_uri", help="Read the decision rule from this bundle, not the registry's.")
@click.option("--min-labels", type=int, help="Fewer labels per track: no verdict (exit 3).")
@click.option("--min-f1", type=float, help="Live F1 under this over --min-labels labels: degraded.")
@click.option("--pushgateway", "pushgateway_url", help="Push the live metrics to this Pushgateway URL.")
@click.option("--kfp-host", default="", help="Retrain through this KFP API (default: a local pipeline run).")
@click.option("--no-retrain", is_flag=True, help="Report degradation but never launch retraining.")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict JSON instead of the table.")
@click.option("--fail-on-degradation", is_flag=True, help=f"Exit {EXIT_DEGRADED} when degraded.")
@click.option(
    "--allow-no-verdict",
    is_flag=True,
    help=f"Too few labels exits 0, not {EXIT_NO_VERDICT} (schedules where a quiet window is normal).",
)
def check(
    model: str,
    config_path: str | None,
    since: str | None,
    log_uri: str | None,
    reports_uri: str | None,
    bundle_uri: str | None,
    min_labels: int | None,
    min_f1: float | None,
    pushgateway_url: str | None,
    kfp_host: str,
    no_retrain: bool,
    as_json: bool,
    fail_on_degradation: bool,
    allow_no_verdict: bool,
) -> None:
    """Join the label log with the last --since of the inference log and judge the model's live quality.

    Prints a table per version and track and publishes the verdict with Evidently's report. Exit 0 with
    a verdict, 3 with too few labels (no verdict, never an alarm), 4 degraded with
    --fail-on-degradation, 1/2 on bad input or unreachable stores. A degraded verdict starts retraining
    (reason: degradation) within the drift retrain cooldown.
    """
    from aidetect.config import load
    from aidetect.feedback import quality as q
    from aidetect.feedback.config import FeedbackConfig
    from aidetect.monitoring import check as drift_check
    from aidetect.monitoring.config import load_drift_config
    from aidetect.refs import ModelRef

    given = {"since": since, "reports_uri": reports_uri, "min_labels": min_labels, "min_f1": min_f1,
             "pushgateway_url": pushgateway_url}  # fmt: skip
    cfg = load(
        FeedbackConfig,
        "feedback",
        config_path,
        {"quality": {k: v for k, v in given.items() if v is not None}},
    )
    drift_cfg = load_drift_config()
    ref = ModelRef.parse(model, drift_check.default_model_name(drift_cfg))
    version = q.judged_version(ref.name, ref.ref)
    bundles = q.bundle_at(bundle_uri) if bundle_uri else q.bundle_of_registered(ref.name)
    retrain = None
    if not no_retrain:  # grows the served model's dataset line first, as the monitoring pipeline does
        from aidetect.flows.monitoring import retrainer

        retrain = retrainer(ref.name, kfp_host, drift_cfg.retrain.data_uri)

    verdict = q.run_check(
        ref.name,
        version,
        cfg,
        log_uri=log_uri or drift_check.log_uri(drift_cfg),
        bundles=bundles,
        retrain=retrain,
    )
    click.echo(json.dumps(verdict, indent=2, default=str) if as_json else table(verdict))
    for note in verdict["notes"]:
        click.echo(f"note: {note}", err=True)
    status = {"ok": "OK", "degraded": "DEGRADED", "insufficient": "no verdict"}[verdict["status"]]
    why = "; ".join(verdict["reasons"])
    click.echo(f"{status}: {ref.name} v{version}{': ' + why if why else ''}", err=True)
    if verdict.get("retrain"):
        click.echo(
            f"retrain: {verdict['retrain'].get('action')}: {verdict['retrain'].get('reason')}", err=True
        )
    if verdict["status"] == "insufficient":
        sys.exit(0 if allow_no_verdict else EXIT_NO_VERDICT)
    click.echo(f"verdict: {verdict['verdict_uri']}", err=True)
    click.echo(f"report: {verdict['report_uri']}", err=True)
    if fail_on_degradation and verdict["degraded"]:
        sys.exit(EXIT_DEGRADED)
