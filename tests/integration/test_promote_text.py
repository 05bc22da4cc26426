"""Promoting a text model (issue 19) against a real MLflow server, a git repository with a bare remote and
a stand-in GitHub API: the version's ``modality: text`` tag selects the text pin (overlays/<env>/text),
which moves staging -> production on its own, with the text gate report as the pull request's evidence,
while the image model's pins and the canary's traffic split stay untouched."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from aidetect.errors import AidetectError
from aidetect.gitops import overlays
from aidetect.gitops.config import PromotionConfig
from aidetect.gitops.promotion import promote, sync_aliases
from aidetect.gitops.verify import verify
from aidetect.model.report import gate_markdown
from tests.helpers.gitops import fake_github, git, make_repo, merge, remote_branches

pytestmark = pytest.mark.slow  # a real MLflow server and registered versions
BUCKET = "s3://aidetect-mlflow/artifacts"
TEXT_PIN = "manifests/overlays/{env}/text/model.yaml"


def _text_gate_report(passed: bool) -> str:
    """The gate report a text evaluation writes (aidetect.model.report.gate_markdown, text modality)."""
    m = {"n": 240, "accuracy": 0.91, "f1": 0.92, "fake_recall": 0.9, "roc_auc": 0.95}
    return gate_markdown(
        {
            "modality": "text",
            "gates": {
                "passed": passed,
                "failures": [] if passed else ["roc_auc 0.61 < 0.90"],
                "checks": [
                    {
                        "name": "auc",
                        "metric": "roc_auc",
                        "value": 0.95,
                        "op": ">=",
                        "limit": 0.9,
                        "passed": passed,
                    }
                ],
            },
            "dataset_version": "txt-0123abcd",
            "eval_split": "test",
            "metrics": m,
            "model": {"arch": "tfidf_lr", "max_len": 4096},
            "labels": ["ai", "human"],
            "threshold": 0.5,
            "threshold_policy": "max_f1",
            "slices": {"generator": {"gpt-4o": m}, "domain": {"reviews": m}},
            "perturbations": {},
        }
    )


def _register_text(name: str, gate_status: str, tmp: Path) -> int:
    """A registered text version as register_text leaves it: tags incl. modality, reports/gate_report.md."""
    from aidetect import registry

    with registry.run(run_name=f"text-{gate_status}") as run_id:
        registry.log_metrics(run_id, {"roc_auc": 0.95 if gate_status == "passed" else 0.61})
        report = tmp / f"gate-{run_id}" / "gate_report.md"
        report.parent.mkdir(parents=True)
        report.write_text(_text_gate_report(gate_status == "passed"))
        registry.log_artifacts(run_id, report, "reports")
    tags = {
        "dataset_version": "txt-0123abcd",
        "git_commit": "0123abcd",
        "gate_status": gate_status,
        "threshold": "0.5",
        "modality": "text",
        "arch": "tfidf_lr",
    }
    return int(registry.register_version(run_id, name, tags=tags, alias=None).version)


@pytest.fixture(scope="module")
def text_versions(mlflow_server_uri: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The baseline every text pin names (v1), a gate-passed version and a gate-failed one."""
    tmp = tmp_path_factory.mktemp("text-versions")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", mlflow_server_uri)
        model = f"text-under-test-{tmp.name}"
        assert _register_text(model, "passed", tmp) == 1
        good = _register_text(model, "passed", tmp)
        failed = _register_text(model, "failed", tmp)
    return {"model": model, "good": good, "failed": failed}


@pytest.fixture
def repo(tmp_path: Path, text_versions: dict, mlflow_server_uri: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server_uri)
    monkeypatch.setenv("AIDETECT_REGISTRY__RETRIES", "1")
    work, bare = make_repo(tmp_path)
    for env in ("staging", "production"):
        pin = work / TEXT_PIN.format(env=env)
        pin.write_text(pin.read_text().replace("aidetect-text-detector", text_versions["model"]))
    git(work, "commit", "-q", "-am", "text pins name the model under test")
    git(work, "push", "-q", "origin", "main")
    return work, bare


def _config(text_versions: dict, github_url: str = "http://127.0.0.1:9") -> PromotionConfig:
    return PromotionConfig(
        model_name=text_versions["model"],
        artifacts_destination=BUCKET,
        github_api_url=github_url,
        github_repository="aidetect/aidetect",
    )


def test_text_model_walks_staging_to_production_on_its_own_pin(
    repo, text_versions: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work, bare = repo
    model, v = text_versions["model"], text_versions["good"]
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken")
    with fake_github() as hub:
        cfg = _config(text_versions, hub.url)
        staged = promote(work, cfg, v, "staging")
        assert staged.branch == f"promote/staging/{model}-v{v}"
        # exactly the text pin changes: the image model's pin and the traffic split stay
        assert git(bare, "diff", "--name-only", "main", staged.branch).split() == [
            TEXT_PIN.format(env="staging")
        ]
        pin = overlays.parse_pin(
            "staging", git(bare, "show", f"{staged.branch}:{TEXT_PIN.format(env='staging')}")
        )
        assert (pin.model_name, pin.version, pin.explainer_uris) == (model, v, ())
        assert pin.uri.startswith(BUCKET + "/") and pin.uri.endswith("/artifacts/serving")
        # the evidence is the text version's own gate report, its metrics and lineage
        body = next(r for r in hub.requests if r["method"] == "POST")["json"]["body"]
        assert "## Quality gates: PASSED" in body and "240 texts" in body and "reading 4096 bytes" in body
        assert f"Text detector: `{TEXT_PIN.format(env='staging')}` changes" in body
        assert "| roc_auc |" in body and "txt-0123abcd" in body

        # the text model has no canary track, and production takes only what staging runs (on main)
        with pytest.raises(AidetectError, match="text model, which has no canary track"):
            promote(work, cfg, v, "canary")
        with pytest.raises(AidetectError, match="production takes only what staging runs: staging runs v1"):
            promote(work, cfg, v, "production")

        # what CI checks on the pull request: both services render and validate, the text pin is gated
        clone = tmp_path / "pr"
        subprocess.run(["git", "clone", "-q", "-b", staged.branch, str(bare), str(clone)], check=True)
        report = verify(clone, cfg, "origin/main")
        assert report.problems == [] and report.changed == {"staging/text": (1, v)}

        merge(bare, staged.branch, tmp_path)
        prod = promote(work, cfg, v, "production")
        assert git(bare, "diff", "--name-only", "main", prod.branch).split() == [
            TEXT_PIN.format(env="production")
        ]
        assert "canary's traffic share" not in prod.body
        merge(bare, prod.branch, tmp_path)
    # git is the source of truth: the text model's aliases follow its own pins
    from aidetect import registry

    assert sync_aliases(work, _config(text_versions)) == {"staging": v, "production": v}
    assert registry.resolve_alias(model, "production") == str(v)


def test_text_refusals_push_nothing(repo, text_versions: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    work, bare = repo
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    cfg = _config(text_versions)
    with pytest.raises(AidetectError, match="did not pass its gates"):
        promote(work, cfg, text_versions["failed"], "staging")
    with pytest.raises(AidetectError, match="--weight applies only"):
        promote(work, cfg, text_versions["good"], "production", weight=10)
    assert remote_branches(bare) == ["main"]


def test_verify_checks_text_pins_gates_and_stage_order(repo, text_versions: dict) -> None:
    work, _ = repo
    cfg = _config(text_versions)
    manifests = work / "manifests"
    root = overlays.read_pin(manifests, "staging", "text").artifact_root
    overlays.write_pin(manifests, "staging", text_versions["model"], text_versions["failed"], root, "text")
    overlays.write_pin(manifests, "production", text_versions["model"], text_versions["good"], root, "text")
    problems = verify(work, cfg, "origin/main").problems
    model = text_versions["model"]
    assert f"staging/text: {model} v{text_versions['failed']} did not pass its gates" in problems
    assert any(p.startswith(f"production/text: v{text_versions['good']} skips a stage") for p in problems)
    # and a pinned URI that is not the version's own run artifact
    assert any(p.startswith("staging/text: storageUri s3://") for p in problems), problems
