"""What CI checks on a promotion pull request: every overlay renders and validates, the deployment
policy holds, and each environment whose pin changed against the base runs a version that passed its
gates, came through the stage before it, and whose pinned URIs are that version's own run artifacts
(a gated version number with a ``storageUri`` pointing at any other bucket or run is refused). The text
detector's pins (``overlays/<env>/text/model.yaml``) are checked alike, with their own stage order."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aidetect import registry
from aidetect.errors import AidetectError
from aidetect.gitops import evidence, git, overlays, render
from aidetect.gitops.config import PromotionConfig
from aidetect.gitops.promotion import pinned_artifact_root


@dataclass
class VerifyReport:
    rendered: dict[str, int] = field(default_factory=dict)  # env -> documents
    skipped: list[str] = field(default_factory=list)  # custom kinds without a schema here
    # env -> (base, head); a text pin's key is "<env>/text"
    changed: dict[str, tuple[int | None, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def verify(repo_path: str | Path, config: PromotionConfig, base_ref: str | None = None) -> VerifyReport:
    """Check the checkout's overlays; with ``base_ref``, also the pins that changed since it."""
    repo = git.toplevel(repo_path)
    manifests = repo / config.manifests_dir
    report = VerifyReport()
    for env in overlays.ENVIRONMENTS:
        try:
            docs = render.render(manifests / "overlays" / env)
        except render.RenderError as exc:
            report.problems.append(str(exc))
            continue
        report.rendered[env] = len(docs)
        checked = render.validate_documents(docs)
        report.problems += [f"{env}: {e}" for e in checked.errors]
        report.skipped += [f"{env}: {s}" for s in checked.skipped]
        report.problems += [f"{env}: {p}" for p in render.policy_violations(docs)]
    if base_ref and not report.problems:
        _check_changed_pins(repo, manifests, config, base_ref, report)
    return report


def _check_changed_pins(
    repo: Path, manifests: Path, config: PromotionConfig, base_ref: str, report: VerifyReport
) -> None:
    for modality in overlays.MODALITIES:
        envs = overlays.environments(modality)
        if modality != "image" and not overlays.pin_path(manifests, envs[0], modality).exists():
            continue  # this checkout serves no text model
        head = {env: overlays.read_pin(manifests, env, modality) for env in envs}
        for env, pin in head.items():
            where = env if modality == "image" else f"{env}/{modality}"
            path = f"{config.manifests_dir.strip('/')}/{overlays.pin_relpath(env, modality)}"
            try:
                base = overlays.parse_pin(env, git.show(repo, base_ref, path))
            except git.GitError:
                base = None
            if base is not None and base == pin:
                continue
            report.changed[where] = (base.version if base else None, pin.version)
            if not registry.gate_passed(pin.model_name, pin.version):
                report.problems.append(f"{where}: {pin.model_name} v{pin.version} did not pass its gates")
            report.problems += [f"{where}: {p}" for p in _artifact_mismatches(pin, config)]
            allowed = _allowed_sources(env, head, modality)
            if allowed and pin.version not in allowed:
                report.problems.append(
                    f"{where}: v{pin.version} skips a stage "
                    f"(it must be what {' or '.join(allowed.values())} runs)"
                )


def _artifact_mismatches(pin: overlays.Pin, config: PromotionConfig) -> list[str]:
    """Pinned URIs that are not the registered run's ``serving`` bundle and ``checkpoint``."""
    try:
        facts = evidence.version_facts(pin.model_name, pin.version, with_report=False)
        root = pinned_artifact_root(facts, config)
    except AidetectError as exc:
        return [str(exc)]
    wanted = {"storageUri": (f"{root}/serving", (pin.uri,))}
    wanted["explainer storageUris"] = (f"{root}/checkpoint", pin.explainer_uris)
    return [
        f"{what} {uri} is not {pin.model_name} v{pin.version}'s run artifact {expected}"
        for what, (expected, uris) in wanted.items()
        for uri in uris
        if uri != expected
    ]


def _allowed_sources(env: str, head: dict[str, overlays.Pin], modality: str = "image") -> dict[int, str]:
    """Versions ``env`` may run: its predecessor's (promotion); for the canary also stable's (rollback)."""
    before = overlays.predecessor(env, modality)
    if before is None:
        return {}
    allowed = {head[before].version: before}
    if env == "canary":
        allowed.setdefault(head["production"].version, "production")
    return allowed
