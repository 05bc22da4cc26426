"""The GitHub REST adapter: check access before anything is pushed, then open the pull request."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from aidetect.errors import AidetectError, ServiceUnavailableError

API_VERSION = "2022-11-28"


class GitHubError(AidetectError):
    """GitHub refused a request (bad token, no access, a pull request that already exists)."""


@dataclass(frozen=True)
class GitHub:
    api_url: str  # https://api.github.com, or a GitHub Enterprise / test server
    repository: str  # owner/name
    token: str = field(repr=False)  # never in a repr, a log line or a traceback's locals dump

    def _request(self, method: str, path: str, json: dict | None = None) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "aidetect-promote",
        }
        url = f"{self.api_url.rstrip('/')}/repos/{self.repository}{path}"
        try:
            return httpx.request(method, url, headers=headers, json=json, timeout=20.0)
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(f"GitHub API at {self.api_url} unreachable: {exc}") from None

    @staticmethod
    def _message(resp: httpx.Response) -> str:
        try:
            body = resp.json()
        except ValueError:
            return resp.text[:200]
        errors = "; ".join(str(e.get("message", e)) for e in body.get("errors", []) if isinstance(e, dict))
        return f"{body.get('message', '')}{': ' + errors if errors else ''}"

    def check_access(self) -> None:
        """Fail before pushing when the token cannot see the repository."""
        resp = self._request("GET", "")
        if resp.status_code != 200:
            raise GitHubError(
                f"GitHub repository {self.repository}: HTTP {resp.status_code} {self._message(resp)}"
            )

    def open_pull_request(self, head: str, base: str, title: str, body: str) -> str:
        """Open a pull request; returns its web URL."""
        resp = self._request(
            "POST", "/pulls", json={"title": title, "head": head, "base": base, "body": body}
        )
        if resp.status_code != 201:
            raise GitHubError(
                f"opening the pull request for {head} failed: HTTP {resp.status_code} {self._message(resp)}",
                hint=f"the branch {head} is pushed; open the pull request by hand",
            )
        return str(resp.json()["html_url"])
