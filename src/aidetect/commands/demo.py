"""``aidetect demo``: the main job end to end on the embedded default, one small function per step.

Each step takes and returns plain values, so later steps (train, evaluate, gate, register, ...) can be
appended to :data:`STEPS` without touching the earlier ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from aidetect import paths


@dataclass
class DemoState:
    """What the steps hand to each other."""

    workdir: Path
    n_per_class: int = 300
    seed: int = 0
    facts: dict[str, Any] = field(default_factory=dict)  # printed at the end: what is where


def step_demo_data(state: DemoState) -> None:
    """Write the synthetic real/fake image set (deterministic: a re-run rewrites the same bytes)."""
    from aidetect.data.demo import generate_demo

    out = state.workdir / f"images-n{state.n_per_class}-seed{state.seed}"
    generate_demo(out, n_per_class=state.n_per_class, seed=state.seed)
    state.facts["demo images"] = str(out)


def step_ingest(state: DemoState) -> None:
    """Ingest the demo images into a content-addressed dataset version."""
    from aidetect.data.versions import ingest

    result = ingest(state.facts["demo images"])
    state.facts["dataset version"] = result.version_id
    state.facts["dataset uri"] = result.uri


def step_validate(state: DemoState) -> None:
    """Validate the version with the Great Expectations suite; critical failures stop the demo."""
    from aidetect.data.validation import validate_version
    from aidetect.data.validation_report import write_reports

    result = validate_version(state.facts["dataset version"])
    out = write_reports(result)
    state.facts["validation"] = "passed" if result.success else "failed (critical)"
    state.facts["validation report"] = out["markdown"]
    result.raise_for_critical()


Step = tuple[str, Callable[[DemoState], None]]

STEPS: list[Step] = [
    ("demo data", step_demo_data),
    ("ingest", step_ingest),
    ("validate", step_validate),
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
