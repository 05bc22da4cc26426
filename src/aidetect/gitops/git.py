"""The git adapter for promotion: refuse a dirty tree or a missing remote, prepare a branch from the
remote's main in a separate worktree (the user's checkout is never switched), commit, push."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from aidetect.errors import AidetectError


class GitError(AidetectError):
    """A git operation failed or the repository is not in a state promotion accepts."""


def run(repo: Path, *args: str, check: bool = True) -> str:
    """``git -C repo ARGS``; its stdout, or a GitError with git's own message."""
    try:
        proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    if check and proc.returncode != 0:
        msg = redact_url(proc.stderr or proc.stdout).strip().splitlines()
        raise GitError(f"git {args[0]} failed: {msg[-1] if msg else 'exit ' + str(proc.returncode)}")
    return proc.stdout


_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def redact_url(text: str) -> str:
    """``text`` with the credentials of every ``scheme://user:token@host`` URL removed.

    Remote URLs often carry a token (``https://x-access-token:ghp_...@github.com/...``) and git repeats
    them in its errors; nothing the platform prints or raises may contain them.
    """
    return _USERINFO.sub("", text)


def toplevel(path: str | Path) -> Path:
    """The repository holding ``path``."""
    if not Path(path).exists():
        raise GitError(f"{path}: no such folder")
    out = run(Path(path), "rev-parse", "--show-toplevel", check=False).strip()
    if not out:
        raise GitError(f"{path} is not inside a git repository")
    return Path(out)


def ensure_clean(repo: Path) -> None:
    """Refuse when tracked files have uncommitted changes (untracked files do not matter)."""
    dirty = run(repo, "status", "--porcelain", "--untracked-files=no").strip()
    if dirty:
        lines = dirty.splitlines()
        more = f" and {len(lines) - 1} more" if len(lines) > 1 else ""
        raise GitError(
            f"the work tree has uncommitted changes ({lines[0].strip()}{more})",
            hint="commit or discard them first; promotion only changes git through a branch",
        )


def remote_url(repo: Path, remote: str) -> str:
    url = run(repo, "remote", "get-url", remote, check=False).strip()
    if not url:
        raise GitError(f"no git remote named {remote!r}", hint=f"git remote add {remote} <url>")
    return url


def fetch(repo: Path, remote: str, branch: str) -> str:
    """Fetch ``remote/branch``; returns the ref to build on."""
    try:
        run(repo, "fetch", "--quiet", remote, f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}")
    except GitError as exc:
        raise GitError(f"cannot fetch {branch} from remote {remote!r}: {exc}") from None
    return f"{remote}/{branch}"


def show(repo: Path, ref: str, path: str) -> str:
    """The text of ``path`` at ``ref``."""
    proc = subprocess.run(["git", "-C", str(repo), "show", f"{ref}:{path}"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise GitError(f"{path} does not exist on {ref}")
    return proc.stdout


def remote_has_branch(repo: Path, remote: str, branch: str) -> bool:
    out = run(repo, "ls-remote", "--heads", remote, f"refs/heads/{branch}")
    return bool(out.strip())


@contextlib.contextmanager
def branch_worktree(repo: Path, branch: str, start: str) -> Iterator[Path]:
    """A temporary worktree on a new local ``branch`` starting at ``start``; the worktree and the local
    branch are removed afterwards (what matters is what was pushed; the caller's checkout is never
    switched or changed)."""
    if run(repo, "branch", "--list", branch).strip():
        raise GitError(f"a local branch {branch} already exists", hint=f"git branch -D {branch}")
    tmp = Path(tempfile.mkdtemp(prefix="aidetect-promote-"))
    path = tmp / "tree"
    run(repo, "worktree", "add", "--quiet", "-b", branch, str(path), start)
    try:
        yield path
    finally:
        run(repo, "worktree", "remove", "--force", str(path), check=False)
        shutil.rmtree(tmp, ignore_errors=True)
        run(repo, "worktree", "prune", check=False)
        run(repo, "branch", "-D", branch, check=False)


def commit(tree: Path, paths: list[str], message: str) -> str:
    """Commit ``paths`` in ``tree``; returns the new commit id."""
    run(tree, "add", "--", *paths)
    if not run(tree, "diff", "--cached", "--name-only").strip():
        raise GitError("nothing to commit: the overlay already says this")
    run(tree, "commit", "--quiet", "-m", message, "--", *paths)
    return run(tree, "rev-parse", "HEAD").strip()


def push(tree: Path, remote: str, branch: str) -> None:
    try:
        run(tree, "push", "--quiet", remote, f"{branch}:refs/heads/{branch}")
    except GitError as exc:
        raise GitError(f"push to {remote!r} failed: {exc}") from None


_GITHUB = re.compile(r"github\.com[:/](?P<repo>[^/]+/[^/]+?)(?:\.git)?/?$")


def github_repository(url: str) -> str | None:
    """``owner/name`` of a GitHub remote URL (https or ssh), else None."""
    m = _GITHUB.search(url)
    return m.group("repo") if m else None
