"""The one MLflow adapter: experiment tracking, model registration, lineage tags and aliases.

Everything else in aidetect talks to MLflow through this module. The tracking URI comes from
:func:`aidetect.paths.tracking_uri` (a SQLite file with a local artifact folder by default, a tracking
server when ``MLFLOW_TRACKING_URI`` is set). Calls that fail because the server cannot be reached are
retried with exponential backoff, then end in :class:`ServiceUnavailableError`.

Registered versions carry the lineage tags ``dataset_version``, ``git_commit``, ``run_id``,
``gate_status`` (``passed``/``failed``) and ``threshold``. Deployment state is expressed with aliases
(``candidate``, ``staging``, ``canary``, ``production``), never with the deprecated stages. A version's
files live in its run's artifacts: ``checkpoint/model.pt``, ``reports/gate_report.{json,md}``,
``plots/*.png``, ``model_card.md``, ``serving/`` and ``reference/``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aidetect import paths
from aidetect.errors import AidetectError, DataError, ServiceUnavailableError

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_MODEL_NAME = "aidetect-detector"
DEFAULT_EXPERIMENT = "aidetect"
ALIASES = ("candidate", "staging", "canary", "production")
LINEAGE_TAGS = ("dataset_version", "git_commit", "run_id", "gate_status", "threshold")
CHECKPOINT_PATH = "checkpoint"  # run artifact folder holding model.pt; the version's source

_CONNECTION_MARKERS = (
    "max retries exceeded",
    "connection refused",
    "failed to establish a new connection",
    "connection aborted",
    "connection reset",
    "name or service not known",
    "temporarily_unavailable",
    "read timed out",
    "database is locked",
    "bad gateway",
    "service unavailable",
)


@dataclass(frozen=True)
class VersionInfo:
    """One registered model version, as aidetect sees it."""

    name: str
    version: str
    run_id: str
    source: str
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    description: str = ""

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


_tracking_override: str | None = None


def use_tracking_uri(uri: str | None) -> None:
    """Point this process's registry calls at ``uri`` (None: :func:`aidetect.paths.tracking_uri`).

    Flows call it through :meth:`aidetect.flows.Stores.activate`, so no step mutates the environment."""
    global _tracking_override
    _tracking_override = uri or None


def tracking_uri() -> str:
    """The tracking/registry URI registry calls use."""
    return _tracking_override or paths.tracking_uri()


@dataclass
class RegistryConfig:
    """``configs/registry.yaml`` / ``AIDETECT_REGISTRY__<FIELD>`` (the tracking URI is MLflow's own
    ``MLFLOW_TRACKING_URI``)."""

    model_name: str = DEFAULT_MODEL_NAME  # the registered model the commands work on by default
    retries: int = 4  # attempts for a call that cannot reach the server
    backoff_s: float = 0.5  # first wait between attempts; doubles each time

    def validate(self) -> None:
        from aidetect.errors import ConfigError

        if not self.model_name or self.retries < 1 or self.backoff_s < 0:
            raise ConfigError("model_name (non-empty), retries (>= 1), backoff_s (>= 0): out of range")


def settings() -> RegistryConfig:
    from aidetect.config import load

    return load(RegistryConfig, "registry")


def model_name() -> str:
    """The registered model name: ``AIDETECT_REGISTRY__MODEL_NAME`` or ``aidetect-detector``."""
    return settings().model_name


def _settings() -> tuple[int, float]:
    cfg = settings()
    return cfg.retries, cfg.backoff_s


def _is_remote(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def _is_unreachable(exc: BaseException) -> bool:
    import requests

    if isinstance(exc, (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError)):
        return True
    text = str(exc).lower()
    return any(marker in text for marker in _CONNECTION_MARKERS)


def _call(what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run an MLflow call, retrying with exponential backoff while the server is unreachable."""
    from mlflow.exceptions import MlflowException

    attempts, backoff = _settings()
    for attempt in range(1, attempts + 1):
        try:
            return fn(*args, **kwargs)
        except AidetectError:
            raise
        except Exception as exc:
            if not _is_unreachable(exc):
                if isinstance(exc, MlflowException) and (
                    exc.error_code == "RESOURCE_DOES_NOT_EXIST" or "not found" in exc.message.lower()
                ):
                    raise DataError(f"{what}: {exc.message}") from None
                raise
            if attempt == attempts:
                raise ServiceUnavailableError(
                    f"MLflow tracking at {paths.tracking_uri()} is unreachable ({what}, {attempts} attempts)",
                    hint="start the tracking server or set MLFLOW_TRACKING_URI",
                ) from None
            delay = backoff * 2 ** (attempt - 1)
            log.warning(
                "%s: tracking server unreachable, retry %d/%d in %.1fs", what, attempt, attempts, delay
            )
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def client() -> Any:
    """An ``MlflowClient`` for :func:`aidetect.paths.tracking_uri` (tracking and registry)."""
    # MLflow's own HTTP retries would wait minutes; aidetect retries itself with a short backoff.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    from mlflow import MlflowClient

    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def check_reachable() -> None:
    """Fail fast (after retries) with :class:`ServiceUnavailableError` if the tracking server is down."""
    uri = paths.tracking_uri()
    if not _is_remote(uri):
        return
    import requests

    def ping() -> None:
        requests.get(f"{uri.rstrip('/')}/health", timeout=5).raise_for_status()

    _call("health check", ping)


# ---------------------------------------------------------------- tracking


def ensure_experiment(name: str = DEFAULT_EXPERIMENT) -> str:
    """The id of experiment ``name``, created if needed (local artifacts under ``artifacts_root()``)."""
    c = client()
    exp = _call("get experiment", c.get_experiment_by_name, name)
    if exp is not None:
        return exp.experiment_id
    location = None if _is_remote(paths.tracking_uri()) else f"{paths.artifacts_root().rstrip('/')}/{name}"
    return _call("create experiment", c.create_experiment, name, artifact_location=location)


def start_run(
    experiment: str = DEFAULT_EXPERIMENT, run_name: str | None = None, tags: Mapping[str, str] | None = None
) -> str:
    """Create a run and return its id (finish it with :func:`end_run`)."""
    check_reachable()
    exp_id = ensure_experiment(experiment)
    run = _call("create run", client().create_run, exp_id, run_name=run_name, tags=dict(tags or {}))
    return run.info.run_id


def end_run(run_id: str, status: str = "FINISHED") -> None:
    _call("end run", client().set_terminated, run_id, status)


@contextlib.contextmanager
def run(
    experiment: str = DEFAULT_EXPERIMENT, run_name: str | None = None, tags: Mapping[str, str] | None = None
) -> Iterator[str]:
    """A run that ends FINISHED, or FAILED when the body raises."""
    run_id = start_run(experiment, run_name, tags)
    try:
        yield run_id
    except BaseException:
        with contextlib.suppress(Exception):
            end_run(run_id, "FAILED")
        raise
    end_run(run_id)


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{key}."))
        else:
            out[key] = str(v)[:6000]
    return out


def log_params(run_id: str, params: Mapping[str, Any]) -> None:
    """Log (nested) params, flattened with dots."""
    from mlflow.entities import Param

    flat = [Param(k, v) for k, v in _flatten(params).items()]
    for i in range(0, len(flat), 100):
        _call("log params", client().log_batch, run_id, params=flat[i : i + 100])


def log_metrics(run_id: str, metrics: Mapping[str, float], step: int | None = None) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    batch = [Metric(k, float(v), now, step or 0) for k, v in metrics.items() if v is not None and v == v]
    if batch:
        _call("log metrics", client().log_batch, run_id, metrics=batch)


def set_run_tags(run_id: str, tags: Mapping[str, str]) -> None:
    from mlflow.entities import RunTag

    _call("set run tags", client().log_batch, run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def log_artifacts(run_id: str, local_path: str | Path, artifact_path: str | None = None) -> None:
    """Upload a file or a folder's contents to the run under ``artifact_path``."""
    p = Path(local_path)
    c = client()
    if p.is_dir():
        _call("log artifacts", c.log_artifacts, run_id, str(p), artifact_path)
    else:
        _call("log artifact", c.log_artifact, run_id, str(p), artifact_path)


def download_run_artifacts(run_id: str, artifact_path: str, dst: str | Path) -> Path:
    """Download ``artifact_path`` of a run into ``dst``; returns the local path of the artifact."""
    Path(dst).mkdir(parents=True, exist_ok=True)
    local = _call("download artifacts", client().download_artifacts, run_id, artifact_path, str(dst))
    return Path(local)


def get_run(run_id: str) -> Any:
    return _call(f"run {run_id}", client().get_run, run_id)


# ---------------------------------------------------------------- registry


def _info(mv: Any) -> VersionInfo:
    return VersionInfo(
        name=mv.name,
        version=str(mv.version),
        run_id=mv.run_id or "",
        source=mv.source or "",
        tags=dict(mv.tags or {}),
        aliases=tuple(getattr(mv, "aliases", None) or ()),
        description=mv.description or "",
    )


def _is_version(ref: str | int) -> bool:
    return str(ref).isdigit()


def get_version(name: str, version_or_alias: str | int) -> VersionInfo:
    """A version by number (``"3"``) or alias (``"production"`` or ``"@production"``)."""
    ref = str(version_or_alias).lstrip("@")
    c = client()
    if _is_version(ref):
        return _info(_call(f"model {name} version {ref}", c.get_model_version, name, ref))
    return _info(_call(f"model {name} alias {ref}", c.get_model_version_by_alias, name, ref))


def resolve_alias(name: str, alias: str) -> str | None:
    """The version number holding ``alias``, or ``None`` when the alias (or the model) does not exist."""
    try:
        return get_version(name, alias.lstrip("@")).version
    except DataError:
        return None


def set_alias(name: str, alias: str, version: str | int) -> None:
    """Point ``alias`` at ``version`` (moving it from any other version)."""
    alias = alias.lstrip("@")
    if _is_version(alias):
        raise AidetectError(f"alias {alias!r} must not be a number")
    _call(f"set alias {alias}", client().set_registered_model_alias, name, alias, str(version))


def delete_version(name: str, version: str | int) -> None:
    """Delete one version (used to undo a registration that could not be completed)."""
    _call(f"delete {name} version {version}", client().delete_model_version, name, str(version))


def set_version_tag(name: str, version: str | int, key: str, value: str) -> None:
    _call(f"tag {name}/{version}", client().set_model_version_tag, name, str(version), key, str(value))


def gate_passed(name: str, version: str | int) -> bool:
    """Whether the version's ``gate_status`` tag says ``passed``."""
    return get_version(name, version).tags.get("gate_status") == "passed"


def list_versions(name: str) -> list[VersionInfo]:
    """Every version of ``name``, newest first (empty when the model does not exist)."""
    found = _call(f"search {name}", client().search_model_versions, f"name = '{name}'")
    return sorted((_info(v) for v in found), key=lambda v: int(v.version), reverse=True)


def download_artifacts(name: str, version_or_alias: str | int, artifact_path: str, dst: str | Path) -> Path:
    """Download ``artifact_path`` (say ``serving``) of a version's run into ``dst``; return its path."""
    info = get_version(name, version_or_alias)
    if not info.run_id:
        raise DataError(f"model {name} version {info.version} has no run to download from")
    return download_run_artifacts(info.run_id, artifact_path, dst)


def log_version_artifacts(name: str, version: str | int, local_dir: str | Path, artifact_path: str) -> None:
    """Attach files to an existing version by logging them into its run under ``artifact_path``."""
    info = get_version(name, version)
    if not info.run_id:
        raise DataError(f"model {name} version {info.version} has no run to attach artifacts to")
    log_artifacts(info.run_id, local_dir, artifact_path)


def register_version(
    run_id: str,
    name: str | None = None,
    *,
    tags: Mapping[str, str],
    description: str = "",
    alias: str | None = "candidate",
) -> VersionInfo:
    """Register the run's checkpoint as a new version with lineage ``tags`` and point ``alias`` at it.

    All or nothing: the server is checked first, and if tagging or aliasing fails after the version was
    created, the version is deleted again so no half-registered version is left behind.
    """
    from mlflow.exceptions import MlflowException

    name = name or model_name()
    missing = [t for t in LINEAGE_TAGS if t not in tags and t != "run_id"]
    if missing:
        raise DataError(f"cannot register without lineage tags: {', '.join(missing)}")
    check_reachable()
    c = client()
    run_info = get_run(run_id)
    try:
        _call(f"create model {name}", c.create_registered_model, name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    all_tags = {**{k: str(v) for k, v in tags.items()}, "run_id": run_id}
    source = f"{run_info.info.artifact_uri.rstrip('/')}/{CHECKPOINT_PATH}"
    mv = _call(
        f"create version of {name}",
        c.create_model_version,
        name,
        source,
        run_id=run_id,
        tags=all_tags,
        description=description[:5000],
        await_creation_for=0,
    )
    version = str(mv.version)
    try:
        if alias:
            set_alias(name, alias, version)
        return get_version(name, version)
    except BaseException:
        with contextlib.suppress(Exception):
            c.delete_model_version(name, version)
        raise
