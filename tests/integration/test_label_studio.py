"""The review queue against a real Label Studio server: push kept images, a reviewer decides, pull labels."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from aidetect.cli import main
from aidetect.errors import ConfigError, ServiceUnavailableError
from aidetect.feedback import label_studio as review
from aidetect.feedback.capture import ImageStore
from aidetect.feedback.config import ReviewConfig
from aidetect.feedback.labels import LabelLog
from tests.helpers import servers
from tests.helpers.label_studio import LabelStudio
from tests.helpers.quality import MODEL, row, write_log

LABELS = ["REAL", "FAKE"]
TOKEN_ENV = "AIDETECT_LABEL_STUDIO_TOKEN"


def png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (seed * 40 % 256, 90, 200)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def queue(tmp_path: Path, label_studio: LabelStudio) -> tuple[ReviewConfig, ImageStore, dict[str, float]]:
    """Three kept images in the store and the log (scores 0.9, 0.55, 0.1), one kept row whose bytes
    were pruned, one row not kept; a project of its own on the shared server."""
    store = ImageStore(str(tmp_path / "captured"))
    now = datetime.now(UTC) - timedelta(minutes=5)
    scores = {store.put(png(i)): p for i, p in enumerate([0.9, 0.55, 0.1])}
    rows = [row(0, p, "3", "stable", now, image=sha) for sha, p in scores.items()]
    rows.append(row(7, 0.5, "3", "stable", now, image="f" * 64))  # kept, but no longer stored
    rows.append({**row(8, 0.6, "3", "stable", now, image=store.put(png(9))), "kept": False})
    write_log(tmp_path / "log", rows)
    cfg = ReviewConfig(
        url=label_studio.url, project=f"review-{uuid.uuid4().hex[:8]}", log_uri=str(tmp_path / "log")
    )
    return cfg, store, scores


def test_push_annotate_pull_and_repeat(queue: tuple, label_studio: LabelStudio, tmp_path: Path) -> None:
    cfg, store, scores = queue
    log = LabelLog(str(tmp_path / "labels"))
    with review.Client(cfg.url, label_studio.token) as client:
        pushed = review.push(cfg, client, store, MODEL, LABELS)
        assert (pushed.created_project, pushed.kept, pushed.pushed, pushed.missing) == (True, 4, 3, 1)
        again = review.push(cfg, client, store, MODEL, LABELS)
        assert (again.created_project, again.pushed, again.already) == (False, 0, 3)

        tasks = label_studio_tasks(label_studio, pushed.project_id)
        assert len(tasks) == 3
        by_sha = {t["meta"]["sha256"]: t for t in tasks}
        assert set(by_sha) == set(scores)
        first = min(tasks, key=lambda t: t["id"])  # the least certain score is pushed first
        assert first["meta"]["sha256"] == next(s for s, p in scores.items() if p == 0.55)
        for sha, task in by_sha.items():
            (pred,) = task["predictions"]
            p = scores[sha]
            assert pred["result"][0]["value"]["choices"] == ["FAKE" if p >= 0.5 else "REAL"]
            assert pred["score"] == pytest.approx(p if p >= 0.5 else 1 - p)
            assert pred["model_version"] == f"{MODEL}/3"
            assert task["data"]["image"].startswith("data:image/png;base64,")
            assert task["meta"]["model_version"] == "3"

        # reviewers decide two tasks in Label Studio (one disagrees with the model) and skip the third
        sure, unsure, skipped = (next(s for s, p in scores.items() if p == q) for q in (0.9, 0.55, 0.1))
        a1 = label_studio.annotate(by_sha[sure]["id"], "FAKE")
        a2 = label_studio.annotate(by_sha[unsure]["id"], "REAL")
        label_studio.annotate(by_sha[skipped]["id"], None)
        assert label_studio.get(f"/api/tasks/{by_sha[skipped]['id']}")["cancelled_annotations"] == 1  # type: ignore[index]

        pulled = review.pull(cfg, client, log, LABELS)
        assert (pulled.annotations, pulled.added, pulled.already) == (2, 2, 0)
        got = {r.sha256: r for r in log.read()}
        assert got[sure].label == "FAKE" and got[unsure].label == "REAL"
        rec = got[unsure]
        assert (rec.source, rec.author, rec.model_name, rec.model_version) == (
            "label-studio",
            label_studio.username,
            MODEL,
            "3",
        )
        assert rec.note == f"ls:{by_sha[unsure]['id']}:{a2['id']}"
        assert got[sure].note == f"ls:{by_sha[sure]['id']}:{a1['id']}"

        again_pulled = review.pull(cfg, client, log, LABELS)
        assert (again_pulled.added, again_pulled.already, again_pulled.log_uri) == (0, 2, "")
        assert len(log.read()) == 2


def label_studio_tasks(server: LabelStudio, project_id: int) -> list[dict]:
    page = server.get("/api/tasks", project=project_id, fields="all", page_size=100)
    assert isinstance(page, dict)
    return page["tasks"]


def test_a_wrong_token_is_one_clear_error_and_nothing_is_written(
    queue: tuple, label_studio: LabelStudio, tmp_path: Path
) -> None:
    cfg, store, _ = queue
    log = LabelLog(str(tmp_path / "labels"))
    with review.Client(cfg.url, "not-the-token") as client:
        with pytest.raises(ConfigError, match=r"refused the API token \(401"):
            review.push(cfg, client, store, MODEL, LABELS)
        with pytest.raises(ConfigError, match="refused the API token"):
            review.pull(cfg, client, log, LABELS)
    assert log.read() == []
    with review.Client(cfg.url, label_studio.token) as client:
        assert client.find_project(cfg.project) is None  # the refused push created nothing


def test_an_unreachable_server_is_one_clear_error(tmp_path: Path) -> None:
    cfg = ReviewConfig(url=f"http://127.0.0.1:{servers.free_port()}", timeout_s=5)
    with review.Client(cfg.url, "any") as client, pytest.raises(ServiceUnavailableError, match="unreachable"):
        review.pull(cfg, client, LabelLog(str(tmp_path / "labels")), LABELS)


def test_the_cli_pushes_and_pulls_and_reports_errors_in_one_line(
    queue: tuple, label_studio: LabelStudio, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg, store, _ = queue
    labels_root = str(tmp_path / "labels")
    common = ["--url", cfg.url, "--project", cfg.project]
    push = ["review", "push", *common, "--model", MODEL, "--log-uri", cfg.log_uri, "--store", store.root]
    pull = ["review", "pull", *common, "--labels-root", labels_root]
    runner = CliRunner()

    monkeypatch.setenv(TOKEN_ENV, "wrong")
    for args in (push, pull):
        res = runner.invoke(main, args)
        assert res.exit_code == 2, res.output
        assert res.output.strip().splitlines() == [res.output.strip()] and res.output.startswith("error: ")
        assert "Traceback" not in res.output
    assert not Path(labels_root).exists()

    monkeypatch.setenv(TOKEN_ENV, label_studio.token)
    res = runner.invoke(main, push)
    assert res.exit_code == 0, res.output
    assert "3 tasks pushed" in res.output and "(created)" in res.output
    with review.Client(cfg.url, label_studio.token) as client:
        project = client.find_project(cfg.project)
        assert project is not None
        task = next(client.tasks(int(project["id"])))
    label_studio.annotate(task["id"], "FAKE")
    res = runner.invoke(main, pull)
    assert res.exit_code == 0, res.output
    assert "1 labels added" in res.output
    assert runner.invoke(main, pull).output.count("0 labels added, 1 already in the log") == 1
    # a model reference: an alias covers every version of the name, a version only its own rows
    by_alias = runner.invoke(main, [*push[:-6], "--model", f"{MODEL}@production", *push[-4:]])
    assert "0 tasks pushed, 3 already there, 4 kept images" in by_alias.output, by_alias.output
    by_version = runner.invoke(main, [*push[:-6], "--model", f"{MODEL}/4", *push[-4:]])
    assert "0 already there, 0 kept images" in by_version.output, by_version.output


def test_a_personal_access_token_works_and_a_tampered_one_is_refused(
    queue: tuple, label_studio: LabelStudio
) -> None:
    cfg, store, _ = queue
    pat = label_studio.personal_access_token()
    with review.Client(cfg.url, pat) as client:
        assert review.push(cfg, client, store, MODEL, LABELS).pushed == 3  # exchanged for a Bearer token
    with review.Client(cfg.url, pat[:-6] + "AAAAAA") as client, pytest.raises(ConfigError, match="refused"):
        client.find_project(cfg.project)
