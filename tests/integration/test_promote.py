"""Promotion against a real MLflow server, a real git repository with a bare remote, and a local HTTP
server standing in for the GitHub API: branches, commits, pull requests and every refusal."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from aidetect.errors import AidetectError
from aidetect.gitops import overlays
from aidetect.gitops.config import PromotionConfig
from aidetect.gitops.promotion import (
    PromotionRefused,
    promote,
    promote_canary,
    rollback_canary,
    sync_aliases,
)
from aidetect.gitops.verify import verify
from tests.helpers.gitops import fake_github, git, make_repo, merge, register, remote_branches
from tests.helpers.servers import tool

pytestmark = pytest.mark.slow  # a real MLflow server and registered versions
MODEL = "detector-under-test"
BUCKET = "s3://aidetect-mlflow/artifacts"


@pytest.fixture(scope="module")
def versions(mlflow_server_uri: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Registered once per module: the baseline every overlay pins (v1), two gate-passed versions
    (the second better) and one gate-failed."""
    tmp = tmp_path_factory.mktemp("versions")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", mlflow_server_uri)
        model = f"{MODEL}-{tmp.name}"
        assert register(model, {"f1": 0.85, "recall_fake": 0.80}, "passed", tmp) == 1
        good = register(model, {"f1": 0.90, "recall_fake": 0.88}, "passed", tmp)
        better = register(model, {"f1": 0.93, "recall_fake": 0.91}, "passed", tmp)
        failed = register(model, {"f1": 0.70, "recall_fake": 0.60}, "failed", tmp)
    return {"model": model, "good": good, "better": better, "failed": failed}


@pytest.fixture
def tracking(versions: dict, mlflow_server_uri: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server_uri)
    monkeypatch.setenv("AIDETECT_REGISTRY__RETRIES", "1")
    return mlflow_server_uri


@pytest.fixture
def repo(tmp_path: Path, versions: dict, tracking: str) -> tuple[Path, Path]:
    return make_repo(tmp_path, versions["model"])


def config(versions: dict, github_url: str = "http://127.0.0.1:9") -> PromotionConfig:
    return PromotionConfig(
        model_name=versions["model"],
        artifacts_destination=BUCKET,
        github_api_url=github_url,
        github_repository="aidetect/aidetect",
    )


def at_ref(bare: Path, ref: str, path: str) -> str:
    return git(bare, "show", f"{ref}:{path}")


def test_promotion_walks_staging_canary_production_through_pull_requests(
    repo, versions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work, bare = repo
    v = versions["good"]
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken")
    with fake_github() as hub:
        cfg = config(versions, hub.url)
        staged = promote(work, cfg, v, "staging")
        assert staged.branch == f"promote/staging/{versions['model']}-v{v}"
        assert staged.pull_request_url == "https://github.com/aidetect/aidetect/pull/1"
        # the pushed branch changes exactly the staging pin, with comments kept
        changed = git(bare, "diff", "--name-only", "main", staged.branch).split()
        assert changed == ["manifests/overlays/staging/model.yaml"]
        text = at_ref(bare, staged.branch, "manifests/overlays/staging/model.yaml")
        assert text.startswith("# The model version staging serves")
        pin = overlays.parse_pin("staging", text)
        assert (pin.model_name, pin.version) == (versions["model"], v)
        assert pin.uri.startswith(BUCKET + "/") and pin.uri.endswith("/artifacts/serving")
        post = next(r for r in hub.requests if r["method"] == "POST")
        assert post["auth"] == "Bearer t0ken"
        assert post["json"]["head"] == staged.branch and post["json"]["base"] == "main"
        assert "All gates: **passed**" in post["json"]["body"] and "ds-abc123" in post["json"]["body"]
        # the user's checkout is untouched: still on main, clean, no leftover local branch or worktree
        assert git(work, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
        assert git(work, "status", "--porcelain") == ""
        assert git(work, "branch", "--list", "promote/*") == ""
        assert len(git(work, "worktree", "list").splitlines()) == 1

        # canary needs the version in staging on main: refused until the staging PR is merged
        with pytest.raises(PromotionRefused, match="staging runs v1, not v2"):
            promote(work, cfg, v, "canary")
        merge(bare, staged.branch, tmp_path)
        canary = promote(work, cfg, v, "canary", weight=25)
        split = at_ref(bare, canary.branch, "manifests/overlays/canary/virtualservice.yaml")
        assert overlays.parse_canary_weight(split) == 25
        assert "75% to stable" in canary.body
        merge(bare, canary.branch, tmp_path)
        # ramping the running canary is its own PR, on its own branch
        ramp = promote(work, cfg, v, "canary", weight=50)
        assert ramp.branch == f"{canary.branch}-w50"
        assert git(bare, "diff", "--name-only", "main", ramp.branch).split() == [
            "manifests/overlays/canary/virtualservice.yaml"
        ]
        merge(bare, ramp.branch, tmp_path)
        with pytest.raises(PromotionRefused, match="already runs"):
            promote(work, cfg, v, "canary", weight=50)

        # production: the stable pin moves and the canary share returns to 0 in the same PR
        # (what `aidetect canary analyze --apply` does on a promote verdict: the analysis joins the evidence)
        prod = promote_canary(work, cfg, "error rate 0.00% vs stable 0.00%")
        assert prod.branch == f"promote/production/{versions['model']}-v{v}"
        assert "## Canary analysis\n\nerror rate 0.00%" in prod.body
        merge(bare, prod.branch, tmp_path)
        assert sorted(git(bare, "diff", "--name-only", "main~1", "main").split()) == [
            "manifests/overlays/canary/virtualservice.yaml",
            "manifests/overlays/production/model.yaml",
        ]
        assert (
            overlays.parse_canary_weight(
                at_ref(bare, "main", "manifests/overlays/canary/virtualservice.yaml")
            )
            == 0
        )
    # metric differences against the version replaced (v1 pinned by the repo's initial overlays)
    assert "| f1 |" in prod.body and "(replaced)" in prod.body

    # git is the source of truth for what runs where: sync writes it to the registry as aliases
    from aidetect import registry

    assert sync_aliases(work, cfg) == {"staging": v, "canary": v, "production": v}
    assert registry.resolve_alias(versions["model"], "production") == str(v)


def test_refusals_push_nothing(repo, versions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work, bare = repo
    cfg = config(versions)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    cases = [
        (lambda: promote(work, cfg, versions["failed"], "staging"), "did not pass its gates"),
        (lambda: promote(work, cfg, 999, "staging"), "has no version 999"),
        (
            lambda: promote(work, cfg, versions["good"], "production"),
            "production takes only what canary runs",
        ),
        (lambda: promote(work, cfg, versions["good"], "staging", weight=10), "--weight applies only"),
    ]
    for call, message in cases:
        with pytest.raises(AidetectError, match=message):
            call()
    # a dirty tree
    model_yaml = work / "manifests/overlays/staging/model.yaml"
    model_yaml.write_text(model_yaml.read_text() + "# local edit\n")
    with pytest.raises(Exception, match="uncommitted changes"):
        promote(work, cfg, versions["good"], "staging")
    git(work, "checkout", "--", "manifests")
    # a missing remote
    git(work, "remote", "rename", "origin", "upstream")
    with pytest.raises(Exception, match="no git remote named 'origin'"):
        promote(work, cfg, versions["good"], "staging")
    git(work, "remote", "rename", "upstream", "origin")
    assert remote_branches(bare) == ["main"]
    assert git(work, "branch", "--list", "promote/*") == ""


def test_github_rejection_is_a_refusal_before_push(repo, versions, monkeypatch: pytest.MonkeyPatch) -> None:
    work, bare = repo
    monkeypatch.setenv("GITHUB_TOKEN", "expired")
    with fake_github() as hub:
        hub.deny = True
        with pytest.raises(Exception, match="HTTP 401 Bad credentials"):
            promote(work, config(versions, hub.url), versions["good"], "staging")
        assert [r["method"] for r in hub.requests] == ["GET"]
    assert remote_branches(bare) == ["main"]


def test_rollback_returns_traffic_to_stable(
    repo, versions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work, bare = repo
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    cfg = config(versions)
    merge(bare, promote(work, cfg, versions["better"], "staging").branch, tmp_path)
    merge(bare, promote(work, cfg, versions["better"], "canary").branch, tmp_path)
    result = rollback_canary(work, cfg, "canary error rate 12% vs stable 0.1%")
    assert result.branch == f"rollback/canary/{versions['model']}-v{versions['better']}"
    assert result.pull_request_url is None
    canary = overlays.parse_pin("canary", at_ref(bare, result.branch, "manifests/overlays/canary/model.yaml"))
    stable = overlays.parse_pin(
        "production", at_ref(bare, "main", "manifests/overlays/production/model.yaml")
    )
    assert canary.version == stable.version == 1
    weight = overlays.parse_canary_weight(
        at_ref(bare, result.branch, "manifests/overlays/canary/virtualservice.yaml")
    )
    assert weight == 0
    assert "canary error rate 12%" in result.body


def test_cli_without_token_prints_branch_compare_link_and_body(
    repo, versions, tracking: str, tmp_path: Path
) -> None:
    work, bare = repo
    cfg_file = tmp_path / "promotion.yaml"
    cfg_file.write_text(yaml.safe_dump({**config(versions).__dict__, "github_api_url": "http://127.0.0.1:9"}))
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_TOKEN"}
    cmd = [tool("aidetect"), "promote", "--repo", str(work), "--config", str(cfg_file)]
    ok = subprocess.run(
        [*cmd, "--version", str(versions["good"]), "--to", "staging"], capture_output=True, text=True, env=env
    )
    assert ok.returncode == 0, ok.stderr
    branch = f"promote/staging/{versions['model']}-v{versions['good']}"
    assert f"pushed branch {branch}" in ok.stdout
    assert f"compare: https://github.com/aidetect/aidetect/compare/main...{branch}?expand=1" in ok.stdout
    assert "## Gate report" in ok.stdout
    bad = subprocess.run(
        [*cmd, "--version", str(versions["failed"]), "--to", "staging"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode != 0
    assert bad.stderr.startswith("error: ") and "did not pass its gates" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert remote_branches(bare) == sorted(["main", branch])


def test_verify_checks_the_pins_a_pull_request_changes(repo, versions, tmp_path: Path) -> None:
    """What .github/workflows/promotion.yml runs on a PR: render, validate, policy, gates, stage order."""
    work, bare = repo
    cfg = config(versions)
    branch = promote(work, cfg, versions["good"], "staging").branch
    clone = tmp_path / "pr"
    subprocess.run(["git", "clone", "-q", "-b", branch, str(bare), str(clone)], check=True)
    report = verify(clone, cfg, "origin/main")
    assert report.problems == []
    assert report.changed == {"staging": (1, versions["good"])}
    assert set(report.rendered) == {"staging", "canary", "production"}

    manifests = clone / "manifests"
    root = overlays.read_pin(manifests, "staging").artifact_root
    overlays.write_pin(manifests, "staging", versions["model"], versions["failed"], root)
    overlays.write_pin(manifests, "canary", versions["model"], versions["better"], root)
    problems = verify(clone, cfg, "origin/main").problems
    assert f"staging: {versions['model']} v{versions['failed']} did not pass its gates" in problems
    assert any(p.startswith(f"canary: v{versions['better']} skips a stage") for p in problems), problems

    overlays.pin_path(manifests, "production").write_text("kind: InferenceService\n")
    assert any("production" in p for p in verify(clone, cfg).problems)


def test_verify_refuses_a_gated_version_pinned_to_someone_elses_artifacts(
    repo, versions, tmp_path: Path
) -> None:
    """A gated model-version whose storageUri is another run's (well-formed, so the policy passes it)."""
    work, bare = repo
    cfg = config(versions)
    branch = promote(work, cfg, versions["good"], "staging").branch
    clone = tmp_path / "pr"
    subprocess.run(["git", "clone", "-q", "-b", branch, str(bare), str(clone)], check=True)
    pin_file = overlays.pin_path(clone / "manifests", "staging")
    honest = pin_file.read_text()
    root = overlays.read_pin(clone / "manifests", "staging").artifact_root
    run_id = root.rsplit("/", 2)[-2]
    pin_file.write_text(honest.replace(run_id, "f" * len(run_id)))  # predictor and explainer alike
    problems = verify(clone, cfg, "origin/main").problems
    assert len(problems) == 2, problems
    for what, problem in zip(("storageUri", "explainer storageUris"), problems, strict=True):
        assert problem.startswith(f"staging: {what} s3://") and "f" * len(run_id) in problem
        assert f"is not {versions['model']} v{versions['good']}'s run artifact {root}/" in problem
    pin_file.write_text(honest)
    assert verify(clone, cfg, "origin/main").problems == []
