"""The ``aidetect data`` and ``aidetect demo`` commands: readable output, one-line errors, exit codes."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from aidetect.cli import main
from tests.unit.test_data_versions import make_tree


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_demo_ingest_list_show(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    res = run("data", "demo", str(out), "-n", "20", "--labels", "real,ai-generated,deepfake")
    assert res.exit_code == 0 and "wrote 60 synthetic images" in res.output
    root = str(tmp_path / "ds")
    res = run("data", "ingest", str(out), "--root", root, "--labels", "real,ai-generated,deepfake")
    assert res.exit_code == 0, res.output
    vid = res.output.split()[2]
    assert "created" in res.output and "total" in res.output
    again = run("data", "ingest", str(out), "--root", root, "--labels", "real,ai-generated,deepfake")
    assert f"{vid} already exists (nothing written)" in again.output
    listed = run("data", "list", "--root", root)
    assert vid in listed.output and "real,ai-generated,deepfake" in listed.output
    shown = run("data", "show", vid[:6], "--root", root)
    assert shown.exit_code == 0
    table = shown.output.split("images per split and class:")[1]
    header, _, *rows = [line.split() for line in table.strip().splitlines()[:6]]
    assert header == ["split", "real", "ai-generated", "deepfake", "total"]
    assert rows[-1] == ["total", "20", "20", "20", "60"]


def test_errors_are_one_line(tmp_path: Path) -> None:
    res = run("data", "ingest", str(tmp_path / "nope"), "--root", str(tmp_path / "ds"))
    assert res.exit_code == 1 and res.output.strip() == f"error: source not found: {tmp_path / 'nope'}"
    src = make_tree(tmp_path / "src", {"REAL": 2, "cats": 1})
    res = run("data", "ingest", str(src), "--root", str(tmp_path / "ds"))
    assert res.exit_code == 1 and res.output.startswith("error: unknown class 'cats'")
    assert len(res.output.strip().splitlines()) == 1
    res = run("data", "show", "abc", "--root", str(tmp_path / "ds"))
    assert res.exit_code == 1 and "no dataset version 'abc'" in res.output
    res = run("data", "list", "--root", str(tmp_path / "ds"))
    assert res.exit_code == 0 and "no dataset versions yet" in res.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("labels: [REAL, FAKE]\nsplit_fraction: {}\n")
    res = run("data", "ingest", str(src), "--config", str(bad))
    assert res.exit_code == 2 and "split_fraction: unknown field" in res.output
