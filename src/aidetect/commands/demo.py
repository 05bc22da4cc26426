"""``aidetect demo``: the main job end to end on the embedded default, one small function per step.

Each step takes and returns plain values, so later steps can be appended to :data:`STEPS` without touching
the earlier ones. The demo writes synthetic images, runs the KFP training pipeline locally (``kfp.local``:
ingest, validate, train, evaluate, gate, optimize, register; the data steps run once, inside the pipeline),
then serves the registered model and sends it one V2 request. Sizes and gate rules: ``configs/demo.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from aidetect import paths, registry
from aidetect.errors import AidetectError


@dataclass
class DemoState:
    """What the steps hand to each other."""

    workdir: Path
    n_per_class: int = 300
    seed: int = 0
    facts: dict[str, Any] = field(default_factory=dict)  # printed at the end: what is where
    model_uri: str = ""


def step_demo_data(state: DemoState) -> None:
    """Write the synthetic real/fake image set (deterministic: a re-run rewrites the same bytes)."""
    from aidetect.data.demo import generate_demo

    out = state.workdir / f"images-n{state.n_per_class}-seed{state.seed}"
    generate_demo(out, n_per_class=state.n_per_class, seed=state.seed)
    state.facts["demo images"] = str(out)


# -- the training pipeline, then serving (appended to the data steps) -------------------------------


@dataclass
class DemoConfig:
    """``configs/demo.yaml``: how big and how long the demo's run is (tiny: it must finish in minutes)."""

    preset: str = "ci-tiny"
    train: dict[str, Any] = field(default_factory=lambda: {"epochs": 8, "threads": 2})
    gates: dict[str, Any] = field(default_factory=dict)
    serve: bool = True
    serve_timeout_s: float = 120.0


def load_demo_config() -> DemoConfig:
    from aidetect.config import load

    return load(DemoConfig, "demo")


def _write_yaml(path: Path, data: dict[str, Any]) -> str:
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def step_training_pipeline(state: DemoState) -> None:
    """Run the KFP training pipeline locally (kfp.local): ingest, validate, train, evaluate, gate,
    optimize, register. A small preset and demo gate rules keep it to minutes on a laptop CPU."""
    from aidetect.config import config_dir, read_yaml

    try:
        from pipelines.config import load as load_pipeline_config
        from pipelines.local import run_local
    except ModuleNotFoundError as exc:
        raise AidetectError(
            f"the demo's pipeline needs kfp and the pipelines package ({exc.name} is missing)"
        ) from None
    cfg = load_demo_config()
    preset = {**read_yaml(config_dir() / "presets" / f"{cfg.preset}.yaml"), **cfg.train, "progress": False}
    args = {
        "data_uri": state.facts["demo images"],
        "preset": _write_yaml(state.workdir / "demo-preset.yaml", preset),
        "gate_config": _write_yaml(state.workdir / "demo-gates.yaml", cfg.gates),
    }
    run = run_local("training", load_pipeline_config(), args)
    click.echo(f"[demo]   steps: {', '.join(run.steps)} ({run.seconds:.0f} s)")
    state.facts["pipeline run"] = str(run.run_dir)
    state.facts["dataset version"] = run.parameter("ingest")
    state.facts["validation report"] = run.output("validate", "report")["uri"]
    state.facts["gate report"] = run.output("gate", "report")["uri"]
    if "register" not in run.steps:
        reason = run.output("gate", "gate_result")["metadata"].get("reason", "")
        raise AidetectError(f"the demo model failed its gates, nothing registered: {reason}")
    reg = run.output("register", "registered")["metadata"]
    state.facts["model"] = reg["uri"] + ("" if reg["created"] else " (already registered: identical inputs)")
    state.facts["MLflow UI"] = f"mlflow ui --backend-store-uri {registry.tracking_uri()}"
    state.model_uri = reg["uri"]


def _v2_request(url: str, image: bytes) -> str:
    from aidetect.serving.client import V2Client

    client = V2Client(url)
    model = client.default_model()
    (pred,) = client.predict(model, [image])
    fake = f", P(FAKE)={pred.probability_fake:.3f}" if pred.probability_fake is not None else ""
    return f"POST {url}/v2/models/{model}/infer -> {pred.label}{fake}"


def step_serve(state: DemoState) -> None:
    """Serve the registered model (``aidetect serve``: KServe ModelServer, onnxruntime) on a free loopback
    port, send one Open Inference Protocol v2 request with a demo image, then stop the server."""
    from aidetect.serving.client import serving

    cfg = load_demo_config()
    if not cfg.serve:
        return
    env = {  # the served request goes to the inference log (input to `aidetect drift check`)
        "AIDETECT_SERVING__INFERENCE_LOG_URI": str(paths.home() / "inference-log"),
        "AIDETECT_SERVING__INFERENCE_LOG_FLUSH_ROWS": "1",
    }
    image = sorted(Path(state.facts["demo images"]).rglob("*.png"))[0]
    with serving(state.model_uri, state.workdir / "serve.log", env=env, timeout=cfg.serve_timeout_s) as url:
        state.facts["V2 request"] = f"{_v2_request(url, image.read_bytes())} ({image.name})"
    state.facts["serve it yourself"] = f"aidetect serve --model {state.model_uri}"


Step = tuple[str, Callable[[DemoState], None]]

STEPS: list[Step] = [
    ("demo data", step_demo_data),
    ("training pipeline", step_training_pipeline),
    ("serve + one V2 request", step_serve),
]


def run_steps(
    state: DemoState, steps: list[tuple[str, Callable[[DemoState], None]]] | None = None
) -> DemoState:
    for name, step in steps or STEPS:
        click.echo(f"[demo] {name} ...")
        step(state)
    return state


@click.command()
@click.option("-n", "--n-per-class", default=300, show_default=True, help="Synthetic images per class.")
@click.option("--seed", default=0, show_default=True)
def demo(n_per_class: int, seed: int) -> None:
    """Run the platform end to end on synthetic data (embedded default, no cluster)."""
    state = DemoState(workdir=paths.home() / "demo", n_per_class=n_per_class, seed=seed)
    run_steps(state)
    click.echo("[demo] done:")
    for key, value in state.facts.items():
        click.echo(f"  {key}: {value}")
