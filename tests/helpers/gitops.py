"""Real pieces for promotion tests: a git repository with a bare remote, registered model versions in
a real MLflow, and a local HTTP server standing in for the GitHub REST API."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True).stdout


def make_repo(tmp_path: Path, model: str | None = None) -> tuple[Path, Path]:
    """A checkout on ``main`` holding a copy of ``manifests/`` (every overlay pinning version 1, of
    ``model`` when given), with a bare ``origin`` it was pushed to."""
    bare, work = tmp_path / "origin.git", tmp_path / "work"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    for key, value in (("user.name", "Test Engineer"), ("user.email", "test@aidetect.invalid")):
        git(work, "config", key, value)
    shutil.copytree(REPO / "manifests", work / "manifests", ignore=shutil.ignore_patterns("schemas"))
    if model:
        for pin in (work / "manifests" / "overlays").glob("*/model.yaml"):
            pin.write_text(pin.read_text().replace("model-name: aidetect-detector", f"model-name: {model}"))
    git(work, "add", "manifests")
    git(work, "commit", "-q", "-m", "manifests")
    git(work, "remote", "add", "origin", str(bare))
    git(work, "push", "-q", "origin", "main")
    return work, bare


def remote_branches(bare: Path) -> list[str]:
    out = git(bare, "for-each-ref", "--format=%(refname:short)", "refs/heads")
    return sorted(out.split())


def merge(bare: Path, branch: str, tmp_path: Path) -> None:
    """What pressing "merge" on the pull request does: merge ``branch`` into main on the remote."""
    clone = tmp_path / f"merge-{branch.replace('/', '-')}"
    subprocess.run(["git", "clone", "-q", str(bare), str(clone)], check=True)
    git(clone, "config", "user.name", "Reviewer")
    git(clone, "config", "user.email", "reviewer@aidetect.invalid")
    git(clone, "merge", "-q", "--no-ff", "-m", f"Merge {branch}", f"origin/{branch}")
    git(clone, "push", "-q", "origin", "main")


def register(name: str, metrics: dict[str, float], gate_status: str, tmp_path: Path) -> int:
    """A trained-and-evaluated version: a run with metrics and a gate report, registered with lineage."""
    from aidetect import registry

    with registry.run(run_name=f"test-{gate_status}") as run_id:
        registry.log_metrics(run_id, metrics)
        report = tmp_path / f"gate-{run_id}" / "gate_report.md"
        report.parent.mkdir(parents=True)
        report.write_text(f"# Gate report\n\nAll gates: **{gate_status}** (run {run_id})\n")
        registry.log_artifacts(run_id, report, "reports")
    tags = {
        "dataset_version": "ds-abc123",
        "git_commit": "0123abcd",
        "gate_status": gate_status,
        "threshold": "0.5",
    }
    return int(registry.register_version(run_id, name, tags=tags, alias=None).version)


@dataclass
class FakeGitHub:
    """Answers the two REST calls promotion makes and records them."""

    url: str
    requests: list[dict] = field(default_factory=list)
    deny: bool = False


@contextlib.contextmanager
def fake_github(repository: str = "aidetect/aidetect") -> Iterator[FakeGitHub]:
    state: FakeGitHub

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self) -> dict:
            length = int(self.headers.get("Content-Length") or 0)
            payload = json.loads(self.rfile.read(length)) if length else None
            entry = {
                "method": self.command,
                "path": self.path,
                "auth": self.headers.get("Authorization"),
                "json": payload,
            }
            state.requests.append(entry)
            return entry

        def do_GET(self) -> None:
            self._record()
            if state.deny:
                self._answer(401, {"message": "Bad credentials"})
            elif self.path == f"/repos/{repository}":
                self._answer(200, {"full_name": repository})
            else:
                self._answer(404, {"message": "Not Found"})

        def do_POST(self) -> None:
            entry = self._record()
            if self.path != f"/repos/{repository}/pulls":
                self._answer(404, {"message": "Not Found"})
                return
            number = sum(1 for r in state.requests if r["method"] == "POST")
            self._answer(
                201,
                {
                    "number": number,
                    "html_url": f"https://github.com/{repository}/pull/{number}",
                    **entry["json"],
                },
            )

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = FakeGitHub(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
