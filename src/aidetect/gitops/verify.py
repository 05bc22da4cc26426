"""What CI checks on a promotion pull request: every overlay renders and validates, the deployment
policy holds, and each environment whose pin changed against the base runs a version that passed its
gates and came through the stage before it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aidetect import registry
from aidetect.gitops import git, overlays, render
from aidetect.gitops.config import PromotionConfig


@dataclass
class VerifyReport:
    rendered: dict[str, int] = field(default_factory=dict)  # env -> documents
    skipped: list[str] = field(default_factory=list)  # custom kinds without a schema here
    changed: dict[str, tuple[int | None, int]] = field(default_factory=dict)  # env -> (base, head)
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
    head = {env: overlays.read_pin(manifests, env) for env in overlays.ENVIRONMENTS}
    for env, pin in head.items():
        path = f"{config.manifests_dir.strip('/')}/overlays/{env}/{overlays.PIN_FILE}"
        try:
            base = overlays.parse_pin(env, git.show(repo, base_ref, path))
        except git.GitError:
            base = None
        if base is not None and (base.model_name, base.version, base.uri) == (
            pin.model_name,
            pin.version,
            pin.uri,
        ):
            continue
        report.changed[env] = (base.version if base else None, pin.version)
        if not registry.gate_passed(pin.model_name, pin.version):
            report.problems.append(f"{env}: {pin.model_name} v{pin.version} did not pass its gates")
        allowed = _allowed_sources(env, head)
        if allowed and pin.version not in allowed:
            report.problems.append(
                f"{env}: v{pin.version} skips a stage (it must be what {' or '.join(allowed.values())} runs)"
            )


def _allowed_sources(env: str, head: dict[str, overlays.Pin]) -> dict[int, str]:
    """Versions ``env`` may run: its predecessor's (promotion); for the canary also stable's (rollback)."""
    before = overlays.PREDECESSOR.get(env)
    if before is None:
        return {}
    allowed = {head[before].version: before}
    if env == "canary":
        allowed.setdefault(head["production"].version, "production")
    return allowed
