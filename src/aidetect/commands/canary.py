"""``aidetect canary analyze``: canary vs stable from Prometheus; promote, hold or rollback."""

from __future__ import annotations

import json

import click

# exit codes, so a scheduler can act on the verdict without parsing text
EXIT = {"promote": 0, "hold": 3, "rollback": 4}


@click.group()
def canary() -> None:
    """Canary analysis of the production traffic split."""


@canary.command()
@click.option("--prometheus", "prometheus_url", help="Prometheus base URL (config: prometheus_url).")
@click.option("--window", help="Compare over the last WINDOW, e.g. 10m (config: window).")
@click.option("--selector", help='Extra PromQL label matchers, e.g. namespace="aidetect-production".')
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="A canary.yaml to use.")
@click.option("--apply", "apply_", is_flag=True, help="Open the matching promotion or rollback pull request.")
@click.option("--repo", default=".", show_default=True, help="Git checkout for --apply.")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
def analyze(prometheus_url, window, selector, config_path, apply_, repo, as_json) -> None:
    """Compare canary and stable on error rate, p95 latency and prediction distribution.

    Exit 0: promote, 3: hold, 4: rollback. No traffic or no Prometheus: an error (exit 1).
    """
    from aidetect.monitoring.canary import analyze as run_analysis
    from aidetect.monitoring.config import load_canary_config

    overrides = {"prometheus_url": prometheus_url, "window": window, "selector": selector}
    cfg = load_canary_config(config_path, {k: v for k, v in overrides.items() if v is not None})
    verdict = run_analysis(cfg)
    if as_json:
        click.echo(json.dumps(verdict.to_dict(), indent=2))
    else:
        click.echo(f"decision: {verdict.decision}")
        for reason in verdict.reasons:
            click.echo(f"  - {reason}")
    if apply_ and verdict.decision != "hold":
        _apply(verdict, repo, cfg.window)
    raise SystemExit(EXIT[verdict.decision])


def _apply(verdict, repo: str, window: str) -> None:
    from aidetect.commands.promote import print_result
    from aidetect.gitops.config import load_promotion_config
    from aidetect.gitops.promotion import promote_canary, rollback_canary

    summary = "\n".join(f"- {r}" for r in verdict.reasons)
    text = f"`aidetect canary analyze` over the last {window}: **{verdict.decision}**\n\n{summary}"
    cfg = load_promotion_config()
    result = (
        promote_canary(repo, cfg, text) if verdict.decision == "promote" else rollback_canary(repo, cfg, text)
    )
    print_result(result)
