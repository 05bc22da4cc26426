"""``aidetect drift``: build a model version's reference profile, check the inference log for drift."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

EXIT_DRIFT = 4  # only with --fail-on-drift; 3 means "too few rows: no verdict"

config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="A drift.yaml to use."
)
model_option = click.option(
    "--model",
    "model",
    required=True,
    help="Registered version: 3, production, NAME/3 or NAME@production.",
)


def _overrides(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


@click.group()
def drift() -> None:
    """Drift monitoring: reference profiles, checks, retraining triggers."""


@drift.command()
@model_option
@config_option
@click.option("--since", help="Window length, e.g. 30m, 1h, 1d (default from config: 1h).")
@click.option("--log-uri", help="Inference log root (folder or s3://).")
@click.option("--reports-uri", help="Where verdicts and HTML reports go (folder or s3://).")
@click.option("--reference", "reference_uri", help="Use this reference profile instead of the registry's.")
@click.option("--min-rows", type=int, help="Fewer rows in the window: no verdict (exit 3).")
@click.option("--pushgateway", "pushgateway_url", help="Push the drift metrics to this Pushgateway URL.")
@click.option(
    "--no-retrain",
    is_flag=True,
    help="Report drift but never launch retraining (else: grow the dataset with labels, then retrain).",
)
@click.option("--fail-on-drift", is_flag=True, help=f"Exit {EXIT_DRIFT} when drift is detected.")
def check(
    model: str,
    config_path: str | None,
    since: str | None,
    log_uri: str | None,
    reports_uri: str | None,
    reference_uri: str | None,
    min_rows: int | None,
    pushgateway_url: str | None,
    no_retrain: bool,
    fail_on_drift: bool,
) -> None:
    """Compare the last --since of the inference log with the version's reference profile.

    Prints the JSON verdict. Exit 0 with a verdict (drift or not), 3 when the window is too small to
    judge, 1/2 on bad input or unreachable stores.
    """
    from aidetect.monitoring.check import default_model_name, run_check
    from aidetect.monitoring.config import load_drift_config
    from aidetect.refs import ModelRef

    cfg = load_drift_config(
        config_path,
        _overrides(
            since=since,
            log_uri=log_uri,
            reports_uri=reports_uri,
            min_rows=min_rows,
            pushgateway_url=pushgateway_url,
        ),
    )
    ref = ModelRef.parse(model, default_model_name(cfg))
    retrain = None
    if not no_retrain:  # grows the served model's dataset line first, as the monitoring pipeline does
        from aidetect.flows.monitoring import retrainer

        retrain = retrainer(ref.name, "", cfg.retrain.data_uri, retrain=cfg.retrain)
    verdict = run_check(ref, cfg, reference_uri=reference_uri, retrain=retrain)
    click.echo(json.dumps(verdict, indent=2, default=str))
    state = "DRIFT" if verdict["drift_detected"] else "no drift"
    why = "; ".join(verdict["reasons"])
    click.echo(
        f"{state}: {verdict['model_name']} v{verdict['model_version']}, "
        f"{verdict['rows_current']} rows{': ' + why if why else ''}",
        err=True,
    )
    if verdict.get("retrain"):
        click.echo(f"retrain: {verdict['retrain']['action']}: {verdict['retrain']['reason']}", err=True)
    click.echo(f"report: {verdict['report_uri']}", err=True)
    if fail_on_drift and verdict["drift_detected"]:
        sys.exit(EXIT_DRIFT)


@drift.command()
@model_option
@config_option
@click.option("--dataset", "dataset_version", help="Dataset version (default: the version's lineage tag).")
@click.option("--split", default="val", show_default=True, help="Dataset split to profile.")
@click.option(
    "--bundle", "bundle_uri", help="Serving bundle for predictions (default: the version's serving/)."
)
@click.option("--no-predictions", is_flag=True, help="Profile image features only (no model outputs).")
@click.option("--max-rows", type=int, default=5000, show_default=True, help="Sample the split down to this.")
@click.option("--datasets-root", help="Datasets root (folder or s3://).")
@click.option("--out", "out_dir", help="Also write the profile to this folder or s3:// prefix.")
@click.option("--no-log", is_flag=True, help="Do not attach the profile to the registered version.")
def reference(
    model: str,
    config_path: str | None,
    dataset_version: str | None,
    split: str,
    bundle_uri: str | None,
    no_predictions: bool,
    max_rows: int,
    datasets_root: str | None,
    out_dir: str | None,
    no_log: bool,
) -> None:
    """Build the reference profile of a registered version and store it under its reference/ artifacts."""
    from aidetect.monitoring.check import default_model_name
    from aidetect.monitoring.config import load_drift_config
    from aidetect.monitoring.reference import profile_version
    from aidetect.refs import ModelRef

    cfg = load_drift_config(config_path)
    ref = ModelRef.parse(model, default_model_name(cfg))
    df, profile, where = profile_version(
        ref.name,
        ref.ref,
        dataset_version=dataset_version,
        split=split,
        bundle_uri=bundle_uri,
        predictions=not no_predictions,
        max_rows=max_rows,
        datasets_root=datasets_root,
        out_dir=out_dir,
        log_to_registry=not no_log,
    )
    click.echo(
        f"reference profile of {profile.model_name} v{profile.model_version}: {profile.rows} rows from "
        f"dataset {profile.dataset_version} ({profile.split}), columns: {', '.join(df.columns)}"
    )
    for w in where:
        click.echo(f"  stored: {w}")


@drift.command()
@config_option
@click.option("--model", "model_name", help="Registered model name (default from config).")
def status(config_path: str | None, model_name: str | None) -> None:
    """Show the latest verdict and the retraining launches recorded for a model."""
    from aidetect.monitoring.check import default_model_name, read_latest
    from aidetect.monitoring.config import load_drift_config
    from aidetect.monitoring.retrain import load_launches, state_uri

    cfg = load_drift_config(config_path)
    name = model_name or default_model_name(cfg)
    latest = read_latest(cfg, name)
    if latest is None:
        click.echo(f"{name}: no drift check recorded yet")
    else:
        state = "DRIFT" if latest["drift_detected"] else "no drift"
        click.echo(
            f"{name} v{latest['model_version']}: {state} at {latest['checked_at']} "
            f"({latest['rows_current']} rows); report: {latest['report_uri']}"
        )
    for launch in load_launches(state_uri(cfg.retrain)):
        if launch.model_name == name:
            click.echo(f"  retrain {launch.id} [{launch.status}] at {launch.at}: {'; '.join(launch.reasons)}")
