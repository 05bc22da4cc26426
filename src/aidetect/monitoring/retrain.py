"""Launch retraining when drift is found, at most once per cooldown, and record why.

The launcher is a command template from ``configs/drift.yaml`` (``retrain.command``): the local
pipeline (``aidetect pipeline run training --local``) on one machine, a KFP submit in a cluster, or
anything else that starts a training run. The state file (local or ``s3://``) lists every launch with
its reason, so "why did this model retrain?" has an answer, and the cooldown survives restarts.

A launch is recorded *before* the command runs (status ``launching``), so a crash mid-launch still
holds the cooldown; the record is then updated with the exit code. A failed launch (non-zero exit or
a command that cannot start) does not hold the cooldown: the next drifted check tries again.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aidetect import storage
from aidetect.errors import ConfigError, StorageError
from aidetect.monitoring.config import RetrainConfig, parse_duration
from aidetect.paths import home

PLACEHOLDERS = ("model_name", "model_version", "dataset_version", "data_uri", "reason_file", "init_from")


@dataclass
class Launch:
    """One retraining launch and why it happened."""

    id: str
    model_name: str
    model_version: str
    at: str  # ISO-8601 UTC
    reasons: list[str]
    verdict_uri: str
    command: list[str]
    status: str = "launching"  # launching | succeeded | failed
    returncode: int | None = None
    log_uri: str = ""


@dataclass
class Decision:
    """What :func:`maybe_retrain` did, and why."""

    launched: bool
    reason: str
    launch: Launch | None = None
    cooldown_until: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def state_uri(cfg: RetrainConfig) -> str:
    return cfg.state_uri or str(home() / "monitoring" / "retrain-state.json")


def load_launches(uri: str) -> list[Launch]:
    """Every recorded launch (oldest first); an absent state file means none."""
    if not storage.exists(uri):
        return []
    try:
        data = json.loads(storage.read_bytes(uri))
        return [Launch(**item) for item in data.get("launches", [])]
    except (json.JSONDecodeError, TypeError, AttributeError) as exc:
        raise StorageError(f"retrain state {uri} is corrupt ({exc}); move it aside to reset") from None


def _save(uri: str, launches: list[Launch]) -> None:
    body = {"launches": [asdict(x) for x in launches]}
    storage.write_bytes(uri, json.dumps(body, indent=2).encode())


def last_launch(launches: list[Launch], model_name: str) -> Launch | None:
    """The latest launch for ``model_name`` that holds the cooldown (not failed)."""
    held = [x for x in launches if x.model_name == model_name and x.status != "failed"]
    return held[-1] if held else None


def render_command(template: list[str], values: dict[str, str]) -> list[str]:
    """Fill ``{placeholder}`` fields in each argument; unknown placeholders are a ConfigError."""
    out = []
    for arg in template:
        try:
            out.append(arg.format(**values))
        except (KeyError, IndexError, ValueError) as exc:
            known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            raise ConfigError(
                f"retrain.command: bad placeholder in {arg!r} ({exc}); known: {known}"
            ) from None
    return out


def held(cfg: RetrainConfig, model_name: str, now: datetime | None = None) -> Decision | None:
    """Why no launch may happen now (disabled, or within the cooldown of the last launch), or None.

    Asked before any work a launch needs (growing the dataset first), and again by :func:`maybe_retrain`."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    if not cfg.enabled:
        return Decision(False, "retraining is disabled (retrain.enabled: false)")
    previous = last_launch(load_launches(state_uri(cfg)), model_name)
    cooldown = parse_duration(cfg.cooldown, "retrain.cooldown")
    if previous is not None:
        until = datetime.fromisoformat(previous.at) + cooldown
        if now < until:
            why = f"within the {cfg.cooldown} cooldown of launch {previous.id} at {previous.at}"
            return Decision(False, why, launch=previous, cooldown_until=until.isoformat())
    return None


def maybe_retrain(
    cfg: RetrainConfig,
    *,
    model_name: str,
    model_version: str,
    dataset_version: str,
    reasons: list[str],
    verdict_uri: str,
    log_dir: str,
    now: datetime | None = None,
    init_from: str = "",
) -> Decision:
    """Launch retraining unless disabled or within the cooldown of the last launch for this model.

    ``init_from`` fills ``{init_from}`` (the champion to warm-start from; default the model that drifted)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    refused = held(cfg, model_name, now)
    if refused is not None:
        return refused
    uri = state_uri(cfg)
    launches = load_launches(uri)
    cooldown = parse_duration(cfg.cooldown, "retrain.cooldown")
    if not cfg.data_uri and any("{data_uri}" in arg for arg in cfg.command):
        return Decision(
            False, "not launched: retrain.command needs {data_uri} but retrain.data_uri is not set"
        )
    launch_id = f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    reason_file = str(Path(log_dir) / f"retrain-{launch_id}.reason.json")
    values = {
        "model_name": model_name,
        "model_version": str(model_version),
        "dataset_version": dataset_version,
        "data_uri": cfg.data_uri,
        "reason_file": reason_file,
        "init_from": init_from or f"models:/{model_name}/{model_version}",
    }
    command = render_command(cfg.command, values)
    launch = Launch(
        id=launch_id,
        model_name=model_name,
        model_version=str(model_version),
        at=now.isoformat(),
        reasons=list(reasons),
        verdict_uri=verdict_uri,
        command=command,
        log_uri=str(Path(log_dir) / f"retrain-{launch_id}.log"),
    )
    Path(log_dir).mkdir(parents=True, exist_ok=True)
    Path(reason_file).write_text(json.dumps(asdict(launch), indent=2))
    launches.append(launch)
    _save(uri, launches)  # hold the cooldown before anything runs
    _run(launch, cfg.timeout_seconds)
    _save(uri, launches)
    if launch.status == "failed":
        why = f"launch failed (exit {launch.returncode}): {shlex.join(command)}; see {launch.log_uri}"
        return Decision(False, why, launch=launch)
    return Decision(
        True,
        "; ".join(reasons) or "drift detected",
        launch=launch,
        cooldown_until=(now + cooldown).isoformat(),
    )


def _run(launch: Launch, timeout: int) -> None:
    """Run the launcher command, logging its output next to the reason file."""
    with open(launch.log_uri, "wb") as log:
        try:
            proc = subprocess.run(
                launch.command, stdout=log, stderr=subprocess.STDOUT, timeout=timeout, check=False
            )
            launch.returncode = proc.returncode
        except FileNotFoundError:
            log.write(f"command not found: {launch.command[0]}\n".encode())
            launch.returncode = 127
        except subprocess.TimeoutExpired:
            log.write(f"timed out after {timeout}s\n".encode())
            launch.returncode = 124
    launch.status = "succeeded" if launch.returncode == 0 else "failed"
