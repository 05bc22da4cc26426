"""Dockerfiles of the training, serving and explainer images: hadolint clean, multi-stage, non-root, no torch
in the serving image."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.helpers.servers import tool

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "components" / "images"
DOCKERFILES = {name: IMAGES / name / "Dockerfile" for name in ("train", "serve", "explain")}


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_hadolint_clean(name: str) -> None:
    proc = subprocess.run(
        [tool("hadolint"), "--failure-threshold", "info", str(DOCKERFILES[name])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_multistage_non_root_without_caches(name: str) -> None:
    ins = _instructions(DOCKERFILES[name])
    froms = [args for word, args in ins if word == "FROM"]
    assert len(froms) == 2 and froms[0].endswith("AS build"), "builder stage, then a clean runtime stage"
    runtime = ins[max(i for i, (w, _) in enumerate(ins) if w == "FROM") :]
    users = [args for word, args in runtime if word == "USER"]
    assert users and not users[-1].startswith(("0", "root")), "the runtime stage must end as a non-root user"
    assert any(w == "COPY" and a.startswith("--from=build /opt/venv") for w, a in runtime)
    for word, args in ins:
        if word == "RUN" and "pip install" in args:
            assert "--no-cache-dir" in args, args
        if word == "RUN":
            assert "apt-get install" not in args or "rm -rf /var/lib/apt/lists" in args


def test_serving_image_installs_no_torch() -> None:
    ins = _instructions(DOCKERFILES["serve"])
    installs = " ".join(part for w, a in ins if w == "RUN" for part in a.split("&&") if "pip install" in part)
    assert '".[serve]"' in installs
    assert "torch" not in installs
    assert "[train" not in installs and ",train" not in installs
    # and the build itself fails if a dependency drags torch in
    assert any("find_spec('torch')" in a for w, a in ins if w == "RUN")


def test_training_image_pins_torch_through_constraints() -> None:
    installs = [a for w, a in _instructions(DOCKERFILES["train"]) if w == "RUN" and "pip install" in a]
    assert all("-c constraints.txt" in a for a in installs)
    assert "torch==2.13.0" in installs[0], "torch goes in first and alone"
    assert '".[train]"' in installs[1]


def test_dockerignore_keeps_the_context_small() -> None:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    assert lines[lines.index("*") if "*" in lines else -1] == "*", (
        "deny everything, then allow what images need"
    )
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = set()
    for path in DOCKERFILES.values():
        for word, args in _instructions(path):
            if word == "COPY" and not args.startswith("--from"):
                copied.update(p.rstrip("/") for p in args.split()[:-1])
    assert copied <= allowed, f"COPY sources excluded by .dockerignore: {copied - allowed}"
