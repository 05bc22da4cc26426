"""The README's command-by-command flow, run in its order in a scratch folder, ends in a served prediction.

Each step is the real ``aidetect`` command in its own process, as a newcomer types it: ingest, validate,
train, evaluate, optimize the training folder, register it, serve ``models:/<name>@candidate`` and ask
``aidetect predict``. Registering a folder that was optimized before attaches exactly that bundle.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.helpers.servers import free_port, running

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
# The steps this test runs, as the README names them (`aidetect <words>`), in the README's order.
FLOW = ["data ingest", "data validate", "train", "evaluate", "optimize", "register", "serve", "predict"]
GATES = """min: {accuracy: 0.0}  # the flow is under test here, not the tiny model's accuracy
max: {}
slices: {min: 0.0, max_gap: 1.0}
perturbations: {min: 0.0, max_drop: 1.0}
regression: {enabled: false}
"""


def _readme_flow() -> list[str]:
    """The `aidetect ...` commands of the README's flow block, as their subcommand words."""
    text = (REPO / "README.md").read_text()
    block = text.split("## The flow, command by command", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    words = []
    for line in block.splitlines():
        m = re.match(r"aidetect ((?:data |drift |canary |pipeline )?[a-z]+)", line.strip())
        if m:
            words.append(m.group(1))
    return words


def test_the_readme_shows_these_steps_in_this_order() -> None:
    shown = _readme_flow()
    assert [w for w in shown if w in FLOW] == FLOW, shown


def _aidetect(*args: str, cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    res = subprocess.run(
        [sys.executable, "-m", "aidetect.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert res.returncode == 0, (
        f"aidetect {' '.join(args)}: exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    )
    return res.stdout


def test_readme_flow_ends_with_predict_answering_from_the_candidate(tmp_path: Path) -> None:
    from aidetect.data.demo import generate_demo

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    images = generate_demo(scratch / "images", n_per_class=40, seed=3)
    (scratch / "gates.yaml").write_text(GATES)
    env = {**os.environ, "AIDETECT_HOME": str(scratch / ".aidetect")}
    env.pop("MLFLOW_TRACKING_URI", None)

    out = _aidetect("data", "ingest", str(images), cwd=scratch, env=env)
    version = re.search(r"dataset version ([0-9a-f]+) created", out).group(1)  # type: ignore[union-attr]
    _aidetect("data", "validate", version, cwd=scratch, env=env)
    train = ["train", "--data", version, "--preset", "ci-tiny", "--epochs", "3", "--out", "run"]
    _aidetect(*train, cwd=scratch, env=env)
    evaluate = ["evaluate", "--model", "run", "--data", version, "--gates", "gates.yaml"]
    evaluated = json.loads(_aidetect(*evaluate, cwd=scratch, env=env))
    assert evaluated["gate_status"] == "passed", evaluated
    _aidetect("optimize", "--model", "run", "--data", version, "--out", "bundle", cwd=scratch, env=env)
    registered = json.loads(_aidetect("register", "--model", "run", cwd=scratch, env=env))
    assert "candidate" in registered["aliases"]

    # the version holds the bundle `optimize` wrote, stamped with the registered name and version
    from aidetect import registry

    written = json.loads((scratch / "bundle" / "bundle.json").read_text())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIDETECT_HOME", env["AIDETECT_HOME"])
        attached = Path(
            registry.download_artifacts(registered["name"], "candidate", "serving", tmp_path / "got")
        )
    assert (attached / "model.onnx").read_bytes() == (scratch / "bundle" / "model.onnx").read_bytes()
    stamped = json.loads((attached / "bundle.json").read_text())
    assert (stamped["model_name"], stamped["model_version"]) == (
        registered["name"],
        str(registered["version"]),
    )
    http, grpc = free_port(), free_port()
    serve = [
        sys.executable,
        "-m",
        "aidetect.cli",
        "serve",
        "--model",
        f"models:/{registered['name']}@candidate",
    ]
    serve += ["--http-port", str(http), "--grpc-port", str(grpc)]
    url = f"http://127.0.0.1:{http}"
    with running(serve, f"{url}/v2/health/ready", tmp_path / "serve.log", env=env, timeout=120):
        meta = httpx.get(f"{url}/v2/models/{registered['name']}", timeout=10).json()
        assert meta["versions"] == [str(registered["version"])]
        assert meta["parameters"]["threshold"] == pytest.approx(written["threshold"])
        assert meta["parameters"]["threshold"] == pytest.approx(evaluated["threshold"])
        picks = [sorted((images / label).glob("*.png"))[0] for label in ("REAL", "FAKE")]
        said = _aidetect("predict", *map(str, picks), "--url", url, cwd=scratch, env=env)
    lines = [ln for ln in said.splitlines() if ln.strip()]
    assert len(lines) == 2 and all(re.search(r"\b(REAL|FAKE)\b", ln) for ln in lines), said
