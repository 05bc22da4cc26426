"""``aidetect pipeline``: compile the KFP pipelines, run them locally, submit them to a cluster.

The KFP code lives in the top-level ``pipelines`` and ``components`` packages (shipped with the training
image); this module only imports them when a subcommand runs, so the library never depends on kfp.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import click

from aidetect.errors import AidetectError, ConfigError

PIPELINE_NAMES = ("training", "monitoring")
EXIT_GATE_FAILED = 3  # the run worked, but the model failed its quality gates: nothing registered


def _load(module: str) -> ModuleType:
    try:
        return importlib.import_module(f"pipelines.{module}")
    except ModuleNotFoundError as exc:
        raise AidetectError(
            f"the pipeline command needs kfp and the pipelines package ({exc.name} is missing)",
            hint="install the training extra: pip install -c constraints.txt '.[train]'",
        ) from None


def _config(config_path: str | None, registry: str | None, tag: str | None) -> Any:
    images = {k: v for k, v in (("registry", registry), ("tag", tag)) if v}
    return _load("config").load(config_path, overrides={"images": images} if images else None)


def _arguments(params: tuple[str, ...], data: str | None) -> dict[str, Any]:
    args: dict[str, Any] = dict(_load("params").parse_assignments(params))
    if data:
        args["data_uri"] = data
    return args


config_option = click.option(
    "--config", "config_path", help="Pipeline config file (default configs/pipeline.yaml)."
)
param_option = click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Pipeline parameter (repeatable; JSON for dict/list).",
)
data_option = click.option(
    "--data", help="Shortcut for --param data_uri=URI (folder, zip, parquet or s3://)."
)


@click.group()
def pipeline() -> None:
    """Kubeflow pipelines: compile, run locally, submit to a cluster."""


@pipeline.command("compile")
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False), help="Folder (default pipelines/compiled)."
)
@click.option("--registry", help="Image registry, e.g. ghcr.io/acme (default from config).")
@click.option("--tag", help="Image tag (default from config).")
@config_option
def compile_cmd(out_dir: str | None, registry: str | None, tag: str | None, config_path: str | None) -> None:
    """Compile both pipelines to KFP IR YAML."""
    compiler = _load("compile")
    cfg = _config(config_path, registry, tag)
    for path in compiler.compile_all(cfg, Path(out_dir) if out_dir else compiler.COMPILED_DIR):
        click.echo(f"wrote {path}")


@pipeline.command("run")
@click.argument("name", type=click.Choice(PIPELINE_NAMES))
@click.option("--local", "local", is_flag=True, help="Run on this machine with kfp.local (SubprocessRunner).")
@data_option
@param_option
@config_option
@click.option(
    "--runs-dir",
    type=click.Path(file_okay=False),
    help="Where run folders go (default <home>/pipeline-runs).",
)
@click.option(
    "--show-logs", is_flag=True, help="Stream every step's output instead of writing it to the run log."
)
def run_cmd(
    name: str,
    local: bool,
    data: str | None,
    params: tuple[str, ...],
    config_path: str | None,
    runs_dir: str | None,
    show_logs: bool,
) -> None:
    """Run pipeline NAME end to end on this machine."""
    if not local:
        raise ConfigError(
            "only --local runs happen here; use `aidetect pipeline submit NAME --host URL` for a cluster"
        )
    cfg = _config(config_path, None, None)
    click.echo(f"running the {name} pipeline locally (kfp.local SubprocessRunner)...")
    run = _load("local").run_local(name, cfg, _arguments(params, data), runs_root=runs_dir, echo=show_logs)
    for step in run.steps:
        click.echo(f"  {step:<16} ok")
    click.echo(f"done in {run.seconds:.1f} s; run folder: {run.run_dir}")
    click.echo(f"  summary: {run.run_dir / 'summary.json'}\n  log:     {run.log_path}")
    reg = run.steps.get("register")
    if reg:
        meta = reg["artifacts"]["registered"]["metadata"]
        state = "registered" if meta.get("created") else "already registered (identical inputs)"
        click.echo(f"model {meta.get('name')} version {meta.get('version')} {state}: {meta.get('uri')}")
    elif "gate" in run.steps:
        reason = run.steps["gate"]["artifacts"]["gate_result"]["metadata"].get("reason", "")
        click.echo(f"gate failed: nothing registered ({reason})", err=True)
        sys.exit(EXIT_GATE_FAILED)


@pipeline.command("submit")
@click.argument("name", type=click.Choice(PIPELINE_NAMES))
@click.option(
    "--host", envvar="KF_PIPELINES_ENDPOINT", help="KFP API URL, e.g. http://ml-pipeline-ui.kubeflow:80."
)
@click.option(
    "--schedule", metavar="CRON", help="Create a recurring run on this cron schedule (5 or 6 fields)."
)
@click.option("--run-name", help="Display name of the run (default: the pipeline name).")
@data_option
@param_option
@config_option
def submit_cmd(
    name: str,
    host: str | None,
    schedule: str | None,
    run_name: str | None,
    data: str | None,
    params: tuple[str, ...],
    config_path: str | None,
) -> None:
    """Submit pipeline NAME to a Kubeflow Pipelines API (one run, or a recurring run with --schedule)."""
    cfg = _config(config_path, None, None)
    host = host or cfg.kfp.host
    if not host:
        raise ConfigError("--host: the KFP API URL is required (or set kfp.host / $KF_PIPELINES_ENDPOINT)")
    sub = _load("submit").submit(
        name, cfg, host, _arguments(params, data), schedule=schedule, run_name=run_name
    )
    click.echo(f"created {sub.kind} {sub.id} ({sub.name}) in experiment {sub.experiment_id}: {sub.url}")
