"""``aidetect promote``: propose moving a registered version to an environment, as a pull request."""

from __future__ import annotations

import click

from aidetect.commands._tables import format_table

ENVIRONMENTS = [
    "staging",
    "canary",
    "production",
]  # aidetect.gitops.overlays.ENVIRONMENTS (not imported: fast --help)


def _config(config_path: str | None, remote: str | None, model: str | None):
    from aidetect.gitops.config import load_promotion_config

    overrides = {k: v for k, v in {"remote": remote, "model_name": model}.items() if v}
    return load_promotion_config(config_path, overrides)


def print_result(result) -> None:
    """Show what was pushed and, without a GitHub token, everything needed to open the PR by hand."""
    click.echo(f"pushed branch {result.branch} ({result.commit[:12]})")
    if result.pull_request_url:
        click.echo(f"pull request: {result.pull_request_url}")
        return
    click.echo("no GitHub token configured: open the pull request yourself")
    if result.compare_url:
        click.echo(f"compare: {result.compare_url}")
    click.echo(f"title: {result.title}\n\n{result.body}")


@click.group(invoke_without_command=True)
@click.option("--version", "version", type=int, help="Registered model version to promote.")
@click.option("--to", "env", type=click.Choice(ENVIRONMENTS), help="Target environment.")
@click.option("--weight", type=click.IntRange(1, 100), help="Canary share of production traffic, percent.")
@click.option("--repo", "repo", default=".", show_default=True, help="The git checkout holding manifests/.")
@click.option("--remote", help="Git remote to push to (config: remote).")
@click.option("--model", help="Registered model name (config: model_name).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="A promotion.yaml to use.")
@click.pass_context
def promote(ctx: click.Context, version, env, weight, repo, remote, model, config_path) -> None:
    """Promote --version N --to staging|canary|production through a pull request.

    A text model's version (registry tag modality: text) moves its own pin, overlays/<env>/text, through
    staging -> production: `aidetect promote --model aidetect-text --version N --to staging`.

    Refuses a version that failed its gates, a skipped stage, a dirty work tree or a missing remote;
    nothing is pushed then. `aidetect promote sync` records what each environment runs as aliases.
    """
    ctx.ensure_object(dict)
    ctx.obj.update(repo=repo, remote=remote, model=model, config_path=config_path)
    if ctx.invoked_subcommand is not None:
        return
    if version is None or env is None:
        raise click.UsageError("give --version N and --to ENV (or a subcommand: sync, status)")
    from aidetect.gitops.promotion import promote as run_promotion

    result = run_promotion(repo, _config(config_path, remote, model), version, env, weight)
    print_result(result)


@promote.command()
@click.pass_obj
def sync(obj: dict) -> None:
    """Point the registry aliases staging/canary/production at what main's overlays pin."""
    from aidetect.gitops.promotion import sync_aliases

    done = sync_aliases(obj["repo"], _config(obj["config_path"], obj["remote"], obj["model"]))
    click.echo(format_table([["alias", "version"], *[[env, str(v)] for env, v in done.items()]]))


@promote.command()
@click.pass_obj
def status(obj: dict) -> None:
    """Show which version each overlay in the checkout pins."""
    from pathlib import Path

    from aidetect.gitops.git import toplevel
    from aidetect.gitops.overlays import deployed_versions

    cfg = _config(obj["config_path"], obj["remote"], obj["model"])
    found = deployed_versions(toplevel(obj["repo"]) / Path(cfg.manifests_dir))
    rows = [["environment", "model", "version", "traffic", "uri"]]
    for env, pin in found.items():
        share = f"{pin['weight']}%" if "weight" in pin else ""
        rows.append([env, pin["model_name"], str(pin["version"]), share, pin["uri"]])
        if "text" in pin:  # the text detector beside the image model (overlays/<env>/text)
            text = pin["text"]
            rows.append([f"{env} (text)", text["model_name"], str(text["version"]), "", text["uri"]])
    click.echo(format_table(rows))


@promote.command()
@click.option("--base", "base_ref", help="Also check the pins changed since this git ref (e.g. origin/main).")
@click.pass_obj
def verify(obj: dict, base_ref: str | None) -> None:
    """CI for promotion PRs: render and validate every overlay, check policy and the changed pins' gates."""
    from aidetect.errors import AidetectError
    from aidetect.gitops.verify import verify as run_verify

    report = run_verify(obj["repo"], _config(obj["config_path"], obj["remote"], obj["model"]), base_ref)
    for env, count in report.rendered.items():
        click.echo(f"rendered {env}: {count} documents")
    for skipped in report.skipped:
        click.echo(f"not validated (no schema here): {skipped}")
    for env, (before, after) in report.changed.items():
        click.echo(f"{env}: v{before} -> v{after}")
    if report.problems:
        for problem in report.problems:
            click.echo(f"problem: {problem}", err=True)
        raise AidetectError(f"{len(report.problems)} problem(s) in the overlays")
    click.echo("ok")
