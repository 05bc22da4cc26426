"""train -> evaluate -> register on synthetic demo data, with a real MLflow server and real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from aidetect import registry
from aidetect.cli import main
from aidetect.data.config import load_data_config
from aidetect.data.demo import generate_demo
from aidetect.data.versions import ingest

VENV_BIN = Path(sys.executable).parent
LAX_GATES = "min: {accuracy: 0.0}\nmax: {}\nslices: {min: 0.0}\nperturbations: {min: 0.0}\n"


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """One binary and one three-class demo version under a shared datasets root: (root, binary, three)."""
    base = tmp_path_factory.mktemp("demo")
    root = str(base / "datasets")
    binary = ingest(str(generate_demo(base / "bin", n_per_class=80, seed=1)), root=root).version_id
    labels = ["real", "ai-generated", "deepfake"]
    src = generate_demo(base / "three", n_per_class=40, seed=2, labels=labels)
    three = ingest(str(src), root=root, config=load_data_config(overrides={"labels": labels})).version_id
    return root, binary, three


@pytest.fixture
def datasets(demo_root: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    root, binary, three = demo_root
    monkeypatch.setenv("AIDETECT_DATASETS", root)
    monkeypatch.setenv("AIDETECT_TRAIN__PROGRESS", "false")
    return binary, three


def _cli(*args: str) -> dict:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.index("{") :])


def _fail(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "AIDETECT_TRAIN__PROGRESS": "false", **extra}


@pytest.mark.slow
def test_train_evaluate_register_against_real_mlflow_server(
    datasets: tuple[str, str], mlflow_server_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary, _ = datasets
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server_uri)
    name = f"detector-{time.time_ns()}"
    monkeypatch.setenv("AIDETECT_REGISTRY__MODEL_NAME", name)
    out = tmp_path / "m1"
    trained = _cli("train", "--data", binary, "--preset", "ci-tiny", "--out", str(out))
    assert (out / "model.pt").stat().st_size < 5 * 1024 * 1024
    assert json.loads((out / "run.json").read_text())["run_id"] == trained["run_id"]
    run = registry.get_run(trained["run_id"])
    assert run.data.tags["dataset_version"] == binary and "val_f1" in run.data.metrics
    assert run.data.params["lr"] == "0.005"

    lax = tmp_path / "lax.yaml"
    lax.write_text(LAX_GATES)
    evaluated = _cli("evaluate", "--model", str(out), "--gates", str(lax))
    assert evaluated["gate_status"] == "passed"
    for f in (
        "gate_report.json",
        "gate_report.md",
        "plots/confusion_matrix.png",
        "plots/roc.png",
        "plots/reliability.png",
    ):
        assert (out / "eval" / f).exists(), f
    report = json.loads((out / "eval" / "gate_report.json").read_text())
    assert set(report["perturbations"]) == {"jpeg_q50", "jpeg_q75", "downscale_x2", "blur"}
    assert report["slices"]["resolution"]["<=64px"]["n"] == report["metrics"]["n"]

    registered = _cli("register", "--model", str(out))
    assert registered["version"] == "1" and registered["aliases"] == ["candidate"]
    v = registry.get_version(name, "candidate")
    assert v.tags["gate_status"] == "passed" and v.tags["dataset_version"] == binary
    # the tag is written with 6 decimals
    assert v.tags["run_id"] == trained["run_id"] and float(v.tags["threshold"]) == pytest.approx(
        report["threshold"], abs=5e-7
    )
    assert v.tags["git_commit"]
    got = registry.download_artifacts(name, "1", "model_card.md", tmp_path / "dl")
    assert "Model card" in got.read_text() and "flip averaging: off" in got.read_text()
    ckpt = registry.download_artifacts(name, "1", "checkpoint/model.pt", tmp_path / "dl")
    from aidetect.model.checkpoint import load_checkpoint

    _, meta = load_checkpoint(str(ckpt))
    assert meta["threshold"] == pytest.approx(report["threshold"]) and meta["dataset_version"] == binary
    registry.download_artifacts(name, "1", "reports/gate_report.md", tmp_path / "dl")
    registry.download_artifacts(name, "1", "plots/roc.png", tmp_path / "dl")

    # the production model becomes the champion; a failing gate blocks registration with the reason
    registry.set_alias(name, "production", "1")
    strict = tmp_path / "strict.yaml"
    strict.write_text(LAX_GATES.replace("accuracy: 0.0", "accuracy: 1.01"))
    failed = _cli("evaluate", "--model", str(out), "--gates", str(strict))
    assert failed["gate_status"] == "failed" and failed["failures"][0].startswith("min accuracy: accuracy")
    champ = json.loads((out / "eval" / "gate_report.json").read_text())["champion"]
    assert champ["version"] == "1" and champ["metrics"]["f1"] == pytest.approx(report["metrics"]["f1"])
    code, output = _fail("register", "--model", str(out))
    assert code == 3 and "quality gates failed, not registered: min accuracy" in output
    assert [x.version for x in registry.list_versions(name)] == ["1"]


@pytest.mark.slow
def test_three_classes_end_to_end(
    datasets: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, three = datasets
    monkeypatch.setenv("AIDETECT_TRAIN__FLIP_AVERAGE", "true")  # and with test-time flip averaging
    out = tmp_path / "m3"
    _cli("train", "--data", three, "--preset", "ci-tiny", "--epochs", "1", "--out", str(out))
    gates = tmp_path / "gates.yaml"
    gates.write_text(LAX_GATES.replace("accuracy: 0.0}", "accuracy: 0.0, recall.deepfake: 0.0}"))
    _cli("evaluate", "--model", str(out), "--gates", str(gates), "--threshold-policy", "target_recall")
    report = json.loads((out / "eval" / "gate_report.json").read_text())
    assert report["labels"] == ["real", "ai-generated", "deepfake"]
    assert len(report["metrics"]["confusion"]) == 3 and "recall.deepfake" in report["metrics"]
    assert any(c["metric"] == "recall.deepfake" for c in report["gates"]["checks"])
    from aidetect.model.checkpoint import load_checkpoint
    from aidetect.model.networks import FlipAveraged

    model, meta = load_checkpoint(str(out / "eval" / "model.pt"))
    assert isinstance(model, FlipAveraged) and meta["flip_average"] is True and "threshold" in meta
    registered = _cli("register", "--model", str(out))
    name, version = registry.model_name(), registered["version"]
    assert registry.get_version(name, version).aliases == ("candidate",)
    card = registry.download_artifacts(name, version, "model_card.md", tmp_path / "dl")
    assert "test-time flip averaging: on" in card.read_text()


def _state_progress(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)["progress"]


@pytest.mark.slow
def test_resume_after_sigkill_mid_epoch_matches_an_uninterrupted_run(
    datasets: tuple[str, str], tmp_path: Path
) -> None:
    binary, _ = datasets
    args = ["--data", binary, "--preset", "ci-tiny", "--batch-size", "8", "--no-track"]
    env = _env(AIDETECT_TRAIN__CHECKPOINT_EVERY_STEPS="2", AIDETECT_TRAIN__AUGMENT__JPEG_P="0.5")
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [str(VENV_BIN / "aidetect"), "train", *args, "--out", str(killed)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state = killed / "state.pt"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            if state.exists() and _state_progress(state)["step"] >= 4:
                break
            assert proc.poll() is None, "training ended before it could be killed"
            time.sleep(0.05)
        else:
            pytest.fail("no mid-epoch checkpoint appeared")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    at_kill = _state_progress(state)
    assert at_kill["step"] > 0 and not (killed / "run.json").exists()

    _, output = _fail("train", *args, "--out", str(killed))  # refuses to clobber without --resume
    assert "pass --resume" in output
    resumed = subprocess.run(
        [str(VENV_BIN / "aidetect"), "train", *args, "--out", str(killed), "--resume"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((killed / "run.json").read_text())["epochs_run"] == 2

    straight = tmp_path / "straight"
    subprocess.run(
        [str(VENV_BIN / "aidetect"), "train", *args, "--out", str(straight)],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    a = torch.load(killed / "state.pt", weights_only=False)["model"]
    b = torch.load(straight / "state.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed run diverged from the uninterrupted one"


@pytest.mark.slow
def test_ddp_with_two_cpu_processes_on_gloo(datasets: tuple[str, str], tmp_path: Path) -> None:
    binary, _ = datasets
    out = tmp_path / "ddp"
    cmd = [
        str(VENV_BIN / "torchrun"),
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "aidetect.cli",
        "train",
        "--data",
        binary,
        "--preset",
        "ci-tiny",
        "--no-track",
        "--out",
        str(out),
    ]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((out / "config.json").read_text())["world_size"] == 2
    run = json.loads((out / "run.json").read_text())
    assert run["finished"] and run["epochs_run"] == 2
    from aidetect.model.checkpoint import load_checkpoint

    model, meta = load_checkpoint(str(out / "model.pt"))
    assert meta["labels"] == ["REAL", "FAKE"]
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 2)
    assert done.stdout.count('"run_id"') == 1  # only rank 0 reports


def test_bad_input_fails_before_work_and_names_the_problem(
    datasets: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = str(tmp_path / "x")
    code, msg = _fail("train", "--data", "does-not-matter", "--arch", "vgg99", "--out", out)
    assert code == 2 and "arch: unknown model 'vgg99'" in msg
    code, msg = _fail("train", "--data", "does-not-matter", "--lr", "-1", "--out", out)
    assert code == 2 and "lr: must be positive" in msg
    _, msg = _fail("train", "--data", "nope", "--preset", "ci-tiny", "--out", out)
    assert "no dataset version 'nope'" in msg
    assert not Path(out).exists()
    slices = tmp_path / "slices.yaml"
    slices.write_text("perturbations: [sepia]\n")
    code, msg = _fail("evaluate", "--model", out, "--slices", str(slices))
    assert code == 2 and "perturbations[0]: unknown slice 'sepia'" in msg


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the NaN is made on purpose
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_nan_loss_and_unreachable_tracking_end_clearly(
    datasets: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary, _ = datasets
    monkeypatch.setenv("AIDETECT_TRAIN__STD", "1e-45,1e-45,1e-45")  # overflows the inputs -> NaN loss
    _, msg = _fail(
        "train", "--data", binary, "--preset", "ci-tiny", "--no-track", "--out", str(tmp_path / "nan")
    )
    assert "loss became NaN/inf at epoch 1 step 1" in msg
    assert not (tmp_path / "nan" / "run.json").exists()
    monkeypatch.delenv("AIDETECT_TRAIN__STD")

    from tests.helpers.servers import free_port

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AIDETECT_REGISTRY__RETRIES", "2")
    monkeypatch.setenv("AIDETECT_REGISTRY__BACKOFF_S", "0.05")
    _, msg = _fail("train", "--data", binary, "--preset", "ci-tiny", "--out", str(tmp_path / "t"))
    assert "is unreachable" in msg and "hint: start the tracking server" in msg
    assert not (tmp_path / "t" / "run.json").exists()
