"""Submit a pipeline to a Kubeflow Pipelines API: one run, or a recurring run on a cron schedule."""

from __future__ import annotations

import contextlib
import io
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from aidetect.errors import AidetectError, ConfigError, ServiceUnavailableError
from pipelines.compile import BUILDERS, compile_pipeline
from pipelines.config import PipelineConfig
from pipelines.params import resolve_arguments


@dataclass(frozen=True)
class Submission:
    """What the KFP API created."""

    kind: str  # "run" or "recurring-run"
    id: str
    name: str
    experiment_id: str
    url: str


def kfp_cron(expr: str) -> str:
    """KFP schedules take 6 cron fields (seconds first); accept the usual 5 and prepend ``0``."""
    fields = expr.split()
    if len(fields) == 5:
        return "0 " + " ".join(fields)
    if len(fields) == 6:
        return " ".join(fields)
    raise ConfigError(f"--schedule: expected a cron expression of 5 (or 6) fields, got {expr!r}")


def check_reachable(host: str, timeout_s: float) -> None:
    """Fail in one line unless ``host`` answers the KFP health route."""
    if not host.startswith(("http://", "https://")):
        raise ConfigError(f"--host: expected an http(s) URL of the KFP API, got {host!r}")
    url = host.rstrip("/") + "/apis/v2beta1/healthz"
    try:
        resp = httpx.get(url, timeout=timeout_s)
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        raise ServiceUnavailableError(f"Kubeflow Pipelines API at {host} is unreachable: {reason}") from None
    if resp.status_code >= 400:
        raise ServiceUnavailableError(
            f"Kubeflow Pipelines API at {host} answered HTTP {resp.status_code} on {url}",
            hint="is this the ml-pipeline API address (and is auth needed)?",
        )


def _client(host: str, namespace: str) -> Any:
    import kfp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return kfp.Client(host=host.rstrip("/"), namespace=namespace or "kubeflow")


def _api_error(host: str, exc: Exception) -> AidetectError:
    import kfp_server_api

    if isinstance(exc, kfp_server_api.ApiException):
        body = (exc.body or "").strip().replace("\n", " ")[:300]
        return AidetectError(
            f"Kubeflow Pipelines API at {host} refused the request: HTTP {exc.status} {body}"
        )
    return ServiceUnavailableError(f"Kubeflow Pipelines API at {host} failed: {type(exc).__name__}: {exc}")


def submit(
    name: str,
    cfg: PipelineConfig,
    host: str,
    arguments: dict[str, Any],
    *,
    schedule: str | None = None,
    run_name: str | None = None,
) -> Submission:
    """Compile pipeline ``name`` with ``cfg`` and create a run (or a recurring run for ``schedule``)."""
    if name not in BUILDERS:
        raise ConfigError(f"unknown pipeline {name!r} (known: {', '.join(BUILDERS)})")
    pipeline = BUILDERS[name](cfg)
    args = resolve_arguments(pipeline, arguments)
    cron = kfp_cron(schedule) if schedule else None
    check_reachable(host, cfg.kfp.timeout_s)
    display = run_name or f"{pipeline.name}"
    with tempfile.TemporaryDirectory() as tmp:
        package = compile_pipeline(name, cfg, Path(tmp) / f"{name}.yaml")
        client = _client(host, cfg.kfp.namespace)
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the client prints links; we print our own
                if cron is None:
                    result = client.create_run_from_pipeline_package(
                        str(package), arguments=args, run_name=display, experiment_name=cfg.kfp.experiment
                    )
                    run = result.run_info
                    return Submission(
                        "run",
                        run.run_id,
                        display,
                        run.experiment_id,
                        f"{host.rstrip('/')}/#/runs/details/{run.run_id}",
                    )
                experiment = client.create_experiment(cfg.kfp.experiment)
                rec = client.create_recurring_run(
                    experiment_id=experiment.experiment_id,
                    job_name=display,
                    cron_expression=cron,
                    pipeline_package_path=str(package),
                    params=args,
                    max_concurrency=1,
                    no_catchup=True,
                )
        except AidetectError:
            raise
        except Exception as exc:  # the generated client raises ApiException or urllib3 errors
            raise _api_error(host, exc) from None
    return Submission(
        "recurring-run",
        rec.recurring_run_id,
        display,
        experiment.experiment_id,
        f"{host.rstrip('/')}/#/recurringrun/details/{rec.recurring_run_id}",
    )
