"""``aidetect report``: the operator report, one HTML page across environments."""

from __future__ import annotations

import click


@click.command()
@click.option(
    "--manifests",
    "manifests_dir",
    default="manifests",
    show_default=True,
    help="The manifests folder whose overlays pin the deployed versions.",
)
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="A drift.yaml to use.")
@click.option("--reports-uri", help="Where drift verdicts are (folder or s3://; default from config).")
@click.option("--out", "out", help="Where to write the page (default <AIDETECT_HOME>/report/index.html).")
def report(manifests_dir: str, config_path: str | None, reports_uri: str | None, out: str | None) -> None:
    """Write one HTML page: each environment's versions (image and text), gates, latest drift, live
    quality on reviewers' labels, retrains."""
    from aidetect.monitoring.config import load_drift_config
    from aidetect.monitoring.report import write_report
    from aidetect.paths import home

    cfg = load_drift_config(config_path, {"reports_uri": reports_uri} if reports_uri else None)
    target = out or str(home() / "report" / "index.html")
    path, facts = write_report(manifests_dir, cfg, target)
    for e in facts.environments:
        drift = (
            "no verdict" if e.drift is None else ("DRIFT" if e.drift.get("drift_detected") else "no drift")
        )
        click.echo(f"{e.label:<11} {e.model_name} v{e.version}  gates: {e.gates.status}  drift: {drift}")
        if e.quality is not None:
            click.echo(f"{'':<11} live quality: {e.quality.get('status')} at {e.quality.get('checked_at')}")
    for notice in facts.notices:
        click.echo(f"note: {notice}", err=True)
    click.echo(f"report: {path}")
