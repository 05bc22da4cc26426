"""The pre-commit guard .ci/no_data_files.py: weights, data archives and oversized files are refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GUARD = REPO / ".ci" / "no_data_files.py"


def guard(*paths: Path) -> subprocess.CompletedProcess[str]:
    """Run the hook as pre-commit does: the staged file names as arguments."""
    return subprocess.run(
        [sys.executable, str(GUARD), *map(str, paths)], capture_output=True, text=True, timeout=60
    )


def test_refuses_a_weights_file_and_accepts_python(tmp_path: Path) -> None:
    weights = tmp_path / "model.pt"
    weights.write_bytes(b"\x80\x02tiny but still a checkpoint")
    code = tmp_path / "module.py"
    code.write_text("x = 1\n")

    assert guard(code).returncode == 0
    res = guard(code, weights)
    assert res.returncode == 1
    assert f"refusing {weights}: model weights" in res.stderr
    assert "module.py" not in res.stderr


def test_refuses_data_by_suffix_whatever_the_case(tmp_path: Path) -> None:
    data = tmp_path / "train.PARQUET"
    data.write_bytes(b"PAR1")
    res = guard(data)
    assert res.returncode == 1 and "data sets and archives" in res.stderr


def test_refuses_a_large_file_and_a_large_image_but_not_a_small_one(tmp_path: Path) -> None:
    big = tmp_path / "dump.json"
    big.write_bytes(b"0" * (5 * 1024 * 1024 + 1))
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8" + b"0" * 300 * 1024)
    icon = tmp_path / "icon.png"
    icon.write_bytes(b"\x89PNG" + b"0" * 1024)

    res = guard(big, photo, icon)
    assert res.returncode == 1
    assert "dump.json: 5.0 MB (limit 5 MB)" in res.stderr
    assert "photo.jpg: image of 300 KiB (limit 256 KiB)" in res.stderr
    assert "icon.png" not in res.stderr


def test_a_file_deleted_in_the_commit_passes(tmp_path: Path) -> None:
    assert guard(tmp_path / "gone.json").returncode == 0


def test_the_repository_holds_no_data_files() -> None:
    """The same rule over every tracked file, so CI holds it for commits made without the hooks."""
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True, timeout=60
    ).stdout.split("\0")
    files = [REPO / name for name in tracked if name]
    assert files, "git ls-files listed nothing"
    res = guard(*files)
    assert res.returncode == 0, res.stderr
