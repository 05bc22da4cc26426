"""Tokens stay out of reprs and error messages: the GitHub adapter's repr, git's errors, remote URLs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from aidetect.gitops import git
from aidetect.gitops.github import GitHub

SECRET = "ghp_s3cretT0ken"


def test_the_github_adapter_never_shows_its_token() -> None:
    hub = GitHub("https://api.github.com", "o/r", SECRET)
    assert SECRET not in repr(hub) and SECRET not in str(hub) and "o/r" in repr(hub)


def test_a_failed_fetch_does_not_repeat_the_remote_credentials(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    url = f"http://x-access-token:{SECRET}@127.0.0.1:9/o/r.git"  # nothing listens on port 9
    git.run(tmp_path, "remote", "add", "origin", url)
    with pytest.raises(git.GitError) as err:
        git.fetch(tmp_path, "origin", "main")
    assert SECRET not in str(err.value) and "cannot fetch main" in str(err.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"fatal: 'https://u:{SECRET}@github.com/o/r.git/' denied",
            "fatal: 'https://github.com/o/r.git/' denied",
        ),
        (f"https://{SECRET}@h/x and s3://k@b/p", "https://h/x and s3://b/p"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),  # ssh: a user name, no secret
    ],
)
def test_redact_url_drops_only_userinfo(text: str, expected: str) -> None:
    assert git.redact_url(text) == expected
