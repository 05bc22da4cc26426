"""A real Label Studio server on loopback for the review-queue tests (from ``.venv-labelstudio``).

``make labelstudio-venv`` installs it and migrates a template database once; each test session copies
that database into a temp data dir, so the server is up in seconds. The admin user and its legacy API
token are created non-interactively by ``label-studio start --username --password --user-token``
(``--enable-legacy-api-token``: new organisations otherwise accept only personal access tokens).
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.helpers import servers

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv-labelstudio"
BINARY = VENV / "bin" / "label-studio"
TEMPLATE_DB = VENV / "template" / "label_studio.sqlite3"
QUIET = {  # no version check, analytics or error reports leave the machine
    "LATEST_VERSION_CHECK": "false",
    "COLLECT_ANALYTICS": "false",
    "SENTRY_DSN": "",
    "FRONTEND_SENTRY_DSN": "",
}


@dataclass(frozen=True)
class LabelStudio:
    url: str
    token: str  # the admin's legacy API token
    username: str
    password: str

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}

    def annotate(self, task_id: int, label: str | None) -> dict:
        """Decide a task as a reviewer does in the UI: one Choices result, submitted (None: skip it)."""
        choice = {"choices": [label]}
        result = [{"from_name": "label", "to_name": "image", "type": "choices", "value": choice}]
        body = {"result": result, "lead_time": 1.5} if label else {"result": [], "was_cancelled": True}
        resp = httpx.post(
            f"{self.url}/api/tasks/{task_id}/annotations/", json=body, headers=self.headers(), timeout=30
        )
        resp.raise_for_status()
        return resp.json()

    def personal_access_token(self) -> str:
        """A new personal access token (a JWT refresh token) for the admin, as the account page makes."""
        resp = httpx.post(f"{self.url}/api/token/", headers=self.headers(), timeout=30)
        resp.raise_for_status()
        return resp.json()["token"]

    def get(self, path: str, **params: object) -> dict | list:
        resp = httpx.get(f"{self.url}{path}", params=params, headers=self.headers(), timeout=30)
        resp.raise_for_status()
        return resp.json()


def available() -> bool:
    return BINARY.exists()


@contextlib.contextmanager
def label_studio_server(workdir: Path) -> Iterator[LabelStudio]:
    """Start ``label-studio`` on a free loopback port with its data under ``workdir``; stop it after."""
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    migrated = TEMPLATE_DB.exists()
    if migrated:
        shutil.copy2(TEMPLATE_DB, data / TEMPLATE_DB.name)
    port = servers.free_port()
    url = f"http://127.0.0.1:{port}"
    ls = LabelStudio(url, secrets.token_hex(20), "reviewer@aidetect.invalid", secrets.token_urlsafe(12))
    cmd = [
        str(BINARY),
        "start",
        "--no-browser",
        "--internal-host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data),
        "--username",
        ls.username,
        "--password",
        ls.password,
        "--user-token",
        ls.token,
        "--enable-legacy-api-token",
    ]
    env = {**QUIET, "LABEL_STUDIO_BASE_DATA_DIR": str(data)}
    # without the template the server migrates a fresh database first: minutes on a loaded machine
    log = workdir / "label-studio.log"
    with servers.running(cmd, f"{url}/health", log, env, timeout=90 if migrated else 400):
        yield ls
