"""Promotion: move one registered version to an environment through a pull request.

Checks first, pushes last: the version must exist and have passed its gates, the environment before
the target must already run it (staging -> canary -> production), the work tree must be clean and the
remote reachable. Only then is the overlay edited on a new branch (in a separate worktree built from
the remote's main), committed, pushed, and a pull request opened (or its link and body printed).

The version's ``modality`` tag (``text`` for a text detector, absent for the image model) chooses the
pin: a text version moves ``overlays/<env>/text/model.yaml`` through staging -> production.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from aidetect import registry
from aidetect.errors import AidetectError
from aidetect.gitops import evidence, git, overlays
from aidetect.gitops.config import PromotionConfig
from aidetect.gitops.github import GitHub


class PromotionRefused(AidetectError):
    """The promotion is not allowed (gates, stage order, nothing to change)."""


@dataclass
class Change:
    """An overlay edit to propose: which environment, which version, what the PR says."""

    env: str
    version: int
    artifact_root: str
    branch: str
    title: str
    body: str
    weight: int | None = None  # the canary's traffic share to set in the split (None: leave it)
    modality: str = "image"  # which pin of the environment: the image model's or the text model's


@dataclass
class PromotionResult:
    branch: str
    commit: str
    title: str
    body: str
    pull_request_url: str | None
    compare_url: str | None


@dataclass
class Context:
    """A clean repository with a reachable remote and the overlays as they are on its main branch."""

    repo: Path
    ref: str
    config: PromotionConfig
    model: str

    def manifests_path(self, *parts: str) -> str:
        return "/".join([self.config.manifests_dir.strip("/"), *parts])

    def pin(self, env: str, modality: str = "image") -> overlays.Pin:
        path = self.manifests_path(overlays.pin_relpath(env, modality))
        return overlays.parse_pin(env, git.show(self.repo, self.ref, path), f"{self.ref}:{path}")

    def canary_weight(self) -> int:
        path = self.manifests_path("overlays", "canary", overlays.SPLIT_FILE)
        return overlays.parse_canary_weight(git.show(self.repo, self.ref, path), f"{self.ref}:{path}")


def open_context(repo_path: str | Path, config: PromotionConfig) -> Context:
    """Refuse a dirty tree or a missing remote; fetch the remote's base branch."""
    repo = git.toplevel(repo_path)
    git.ensure_clean(repo)
    git.remote_url(repo, config.remote)
    ref = git.fetch(repo, config.remote, config.base_branch)
    return Context(repo=repo, ref=ref, config=config, model=config.model_name or registry.model_name())


def pinned_artifact_root(facts: evidence.VersionFacts, config: PromotionConfig) -> str:
    """The object-store folder of the version's run, as the cluster will read it."""
    uri = facts.artifact_uri
    if uri.startswith("mlflow-artifacts:") and config.artifacts_destination:
        uri = config.artifacts_destination.rstrip("/") + "/" + uri.split(":", 1)[1].lstrip("/")
    if not uri.startswith(("s3://", "gs://")):
        raise PromotionRefused(
            f"{facts.name} v{facts.version}: its artifacts are at {uri}, which a cluster cannot read",
            hint="track with an S3 artifact store, or set promotion artifacts_destination",
        )
    return uri


def version_modality(facts: evidence.VersionFacts) -> str:
    """Which pin a version belongs in: its ``modality`` tag (``image`` when absent)."""
    modality = facts.tags.get("modality", "image")
    if modality not in overlays.MODALITIES:
        raise PromotionRefused(
            f"{facts.name} v{facts.version} has modality {modality!r}; "
            f"the overlays pin {' and '.join(overlays.MODALITIES)} models"
        )
    return modality


def plan_promotion(ctx: Context, version: int, env: str, weight: int | None) -> Change:
    """Check everything about promoting ``version`` to ``env``; the change to propose, or a refusal."""
    if env not in overlays.ENVIRONMENTS:
        raise PromotionRefused(f"unknown environment {env!r} (one of {', '.join(overlays.ENVIRONMENTS)})")
    if weight is not None and env != "canary":
        raise PromotionRefused("--weight applies only to --to canary")
    if weight is not None and not 1 <= weight <= 100:
        raise PromotionRefused(f"--weight must be 1..100, got {weight}")
    facts = evidence.version_facts(ctx.model, version)
    modality = version_modality(facts)
    if env not in overlays.environments(modality):
        raise PromotionRefused(
            f"{ctx.model} is a {modality} model, which has no {env} track",
            hint=f"its environments: {' -> '.join(overlays.environments(modality))}",
        )
    if not registry.gate_passed(ctx.model, version):
        status = facts.tags.get("gate_status", "missing")
        raise PromotionRefused(f"{ctx.model} v{version} did not pass its gates (gate_status: {status})")
    before = overlays.predecessor(env, modality)
    if before is not None:
        prior = ctx.pin(before, modality)
        runs = prior.version if prior.model_name == ctx.model else None
        if runs != version:
            raise PromotionRefused(
                f"{env} takes only what {before} runs: {before} runs v{runs}, not v{version}",
                hint=f"promote v{version} to {before} first",
            )
    current = ctx.pin(env, modality)
    new_weight = (weight or ctx.config.canary_weight) if env == "canary" else None
    same = current.model_name == ctx.model and current.version == version
    if same and (env != "canary" or ctx.canary_weight() == new_weight):
        raise PromotionRefused(f"{env} already runs {ctx.model} v{version}; nothing to promote")
    root = pinned_artifact_root(facts, ctx.config)
    replaced = None if same else current
    old = evidence.version_facts(current.model_name, current.version, with_report=False) if replaced else None
    branch = f"promote/{env}/{ctx.model}-v{version}"
    extra = ""
    if env == "canary":
        extra = f"Traffic: {new_weight}% to the canary (v{version}), {100 - new_weight}% to stable."
        if same:  # a traffic ramp of the running canary
            branch += f"-w{new_weight}"
    if env == "production" and modality == "image":
        extra = f"The canary's traffic share returns to 0%: v{version} becomes the stable track."
    if modality == "text":
        pinned = ctx.manifests_path(overlays.pin_relpath(env, modality))
        extra = f"Text detector: `{pinned}` changes; the image model's pin stays."
    body = evidence.pull_request_body(env, facts, replaced, old, f"{root}/serving", extra)
    title = f"Promote {ctx.model} v{version} to {env}" + (f" ({new_weight}% traffic)" if new_weight else "")
    # production: the new stable takes all traffic, so the canary's share returns to 0
    weight_after = (
        new_weight if env == "canary" else 0 if env == "production" and modality == "image" else None
    )
    return Change(env, version, root, branch, title, body, weight=weight_after, modality=modality)


def plan_rollback(ctx: Context, reason: str) -> Change:
    """Send all traffic back to stable and re-pin the canary to the stable version."""
    canary, stable = ctx.pin("canary"), ctx.pin("production")
    if canary.version == stable.version and ctx.canary_weight() == 0:
        raise PromotionRefused(
            "the canary already runs the stable version with no traffic; nothing to roll back"
        )
    body = "\n\n".join(
        [
            f"## Roll back the canary {ctx.model} v{canary.version}",
            f"All production traffic returns to stable v{stable.version}; the canary is re-pinned to it.",
            "## Why",
            reason,
        ]
    )
    return Change(
        env="canary",
        version=stable.version,
        artifact_root=stable.artifact_root,
        branch=f"rollback/canary/{ctx.model}-v{canary.version}",
        title=f"Roll back canary {ctx.model} v{canary.version}",
        body=body,
        weight=0,
    )


def propose(ctx: Context, change: Change) -> PromotionResult:
    """Edit the overlay on a new branch, commit, push, and open the pull request when a token is set."""
    cfg = ctx.config
    if git.remote_has_branch(ctx.repo, cfg.remote, change.branch):
        raise PromotionRefused(
            f"branch {change.branch} already exists on {cfg.remote}", hint="merge or delete it first"
        )
    url = git.remote_url(ctx.repo, cfg.remote)
    repository = cfg.github_repository or git.github_repository(url)
    token = os.environ.get(cfg.token_env, "")
    hub = GitHub(cfg.github_api_url, repository, token) if token and repository else None
    if token and not repository:
        raise PromotionRefused(
            f"remote {git.redact_url(url)} is not on GitHub", hint="set promotion github_repository"
        )
    if hub is not None:
        hub.check_access()
    with git.branch_worktree(ctx.repo, change.branch, ctx.ref) as tree:
        manifests = tree / cfg.manifests_dir
        overlays.write_pin(
            manifests, change.env, ctx.model, change.version, change.artifact_root, change.modality
        )
        paths = [str(overlays.pin_path(manifests, change.env, change.modality).relative_to(tree))]
        if change.weight is not None:
            overlays.write_canary_weight(manifests, change.weight)
            paths.append(str(overlays.split_path(manifests).relative_to(tree)))
        commit = git.commit(tree, paths, f"{change.title}\n\n{_first_lines(change.body)}")
        git.push(tree, cfg.remote, change.branch)
    compare = (
        f"{cfg.github_web_url.rstrip('/')}/{repository}/compare/{cfg.base_branch}...{change.branch}?expand=1"
    )
    pr_url = hub.open_pull_request(change.branch, cfg.base_branch, change.title, change.body) if hub else None
    return PromotionResult(
        change.branch, commit, change.title, change.body, pr_url, compare if repository else None
    )


def _first_lines(body: str) -> str:
    return "\n".join(body.splitlines()[:4])


def promote(
    repo_path: str | Path, config: PromotionConfig, version: int, env: str, weight: int | None = None
) -> PromotionResult:
    """``aidetect promote --version N --to ENV [--weight W]``."""
    ctx = open_context(repo_path, config)
    change = plan_promotion(ctx, version, env, weight)
    return propose(ctx, change)


def promote_canary(repo_path: str | Path, config: PromotionConfig, analysis: str) -> PromotionResult:
    """The PR that makes the canary (as pinned on main) the stable production version, with the canary
    analysis that justified it added to the evidence."""
    ctx = open_context(repo_path, config)
    change = plan_promotion(ctx, ctx.pin("canary").version, "production", None)
    change.body = f"{change.body}\n\n## Canary analysis\n\n{analysis}"
    return propose(ctx, change)


def rollback_canary(repo_path: str | Path, config: PromotionConfig, reason: str) -> PromotionResult:
    """The rollback pull request: canary traffic to 0, canary re-pinned to stable."""
    ctx = open_context(repo_path, config)
    return propose(ctx, plan_rollback(ctx, reason))


def sync_aliases(repo_path: str | Path, config: PromotionConfig) -> dict[str, int]:
    """Point the registry aliases of the model (staging/canary/production for the image model,
    staging/production for the text model: whichever pins name it) at what main's overlays pin (git is
    the source of truth). Returns ``{alias: version}``; the tree's state does not matter (read-only)."""
    repo = git.toplevel(repo_path)
    git.remote_url(repo, config.remote)
    ref = git.fetch(repo, config.remote, config.base_branch)
    ctx = Context(repo=repo, ref=ref, config=config, model=config.model_name or registry.model_name())
    modality = _modality_pinning(ctx)
    out: dict[str, int] = {}
    for env in overlays.environments(modality):
        pin = ctx.pin(env, modality)
        if pin.model_name != ctx.model:
            raise PromotionRefused(f"{env} pins {modality} model {pin.model_name}, not {ctx.model}")
        registry.set_alias(ctx.model, env, pin.version)
        out[env] = pin.version
    return out


def _modality_pinning(ctx: Context) -> str:
    """The modality whose staging pin names ``ctx.model`` (image when none does: its refusal names it)."""
    for modality in overlays.MODALITIES:
        try:
            if ctx.pin("staging", modality).model_name == ctx.model:
                return modality
        except git.GitError:
            continue
    return "image"
