"""``aidetect train | evaluate | register``: chainable steps from a dataset version to a registered model.

    aidetect train --data VERSION --preset cifake-cpu --out runs/m1      # runs/m1/model.pt + run.json
    aidetect evaluate --model runs/m1 --gates configs/gates.yaml          # runs/m1/eval/ (gate report)
    aidetect optimize --model runs/m1 --out runs/m1/bundle                # ONNX bundle (optional here)
    aidetect register --model runs/m1                                     # new version, alias candidate

Each step prints one JSON object on stdout (for pipelines); exit code 3 means the gates failed.
"""

from __future__ import annotations

import json
from typing import Any

import click


def _emit(obj: dict[str, Any]) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))


@click.command()
@click.option("--data", "data", required=True, help="Dataset version id (or unique prefix).")
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Output folder (model.pt, run.json)."
)
@click.option(
    "--preset", help="A preset from configs/presets (or a YAML path) merged over configs/train.yaml."
)
@click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="A train.yaml instead of the default."
)
@click.option(
    "--arch",
    help="Network: compact, compact_s, compact_l, forensic_s, forensic_m (native-resolution crops), "
    "mobilenet_v3_small, efficientnet_b0, resnet18.",
)
@click.option("--epochs", type=int)
@click.option("--batch-size", type=int)
@click.option("--lr", type=float)
@click.option("--input-size", type=int)
@click.option("--weights", help="Local or s3:// state dict to start from.")
@click.option("--seed", type=int)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--no-track", is_flag=True, help="Do not log to MLflow (the model cannot be registered then).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out from its last checkpoint.")
@click.option(
    "--init-from",
    help="Warm-start from this model's weights (models:/name/3, models:/name@production or a model.pt) "
    "when the network matches; otherwise from scratch, said in the log.",
)
@click.option("--from-scratch", is_flag=True, help="Ignore --init-from: random (or --weights) start.")
@click.option("--feedback-repeat", type=int, help="Grown versions: each reviewer-labelled image N times.")
def train(
    data: str,
    out: str,
    preset: str | None,
    config_path: str | None,
    arch: str | None,
    epochs: int | None,
    batch_size: int | None,
    lr: float | None,
    input_size: int | None,
    weights: str | None,
    seed: int | None,
    device: str | None,
    no_track: bool,
    resume: bool,
    init_from: str | None,
    from_scratch: bool,
    feedback_repeat: int | None,
) -> None:
    """Train a detector on dataset version DATA into OUT (works under torchrun for DDP)."""
    import os

    from aidetect import flows

    overrides = {
        "arch": arch,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "input_size": input_size,
        "weights": weights,
        "seed": seed,
        "device": device,
        "track": False if no_track else None,
        "feedback_repeat": feedback_repeat,
    }
    stores = flows.Stores()
    _, result = flows.train(
        flows.DatasetRef(data, ""),  # resolved after the config is checked
        stores,
        out,
        preset=preset,
        config_path=config_path,
        overrides=overrides,
        resume=resume,
        init_from=init_from,
        from_scratch=from_scratch,
    )
    if int(os.environ.get("RANK", "0")) == 0:
        _emit(result.__dict__)


@click.command()
@click.option("--model", "model", required=True, help="Training output folder (or a model.pt).")
@click.option("--data", "data", help="Dataset version to evaluate on (default: the one it was trained on).")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default: <model>/eval).")
@click.option("--gates", type=click.Path(dir_okay=False), help="Gates YAML (default: configs/gates.yaml).")
@click.option("--slices", type=click.Path(dir_okay=False), help="Slices YAML (default: configs/slices.yaml).")
@click.option("--threshold-policy", type=click.Choice(["max_f1", "target_recall", "fixed"]))
@click.option("--target-recall", type=float, help="FAKE recall for --threshold-policy target_recall.")
@click.option("--model-name", help="Registered model whose production alias is the champion.")
@click.option("--fail-on-gate", is_flag=True, help="Exit 3 when the gates fail (default: report and exit 0).")
def evaluate(
    model: str,
    data: str | None,
    out: str | None,
    gates: str | None,
    slices: str | None,
    threshold_policy: str | None,
    target_recall: float | None,
    model_name: str | None,
    fail_on_gate: bool,
) -> None:
    """Evaluate MODEL: threshold on val, metrics, slices, plots, quality gates vs the production model."""
    from aidetect import flows

    overrides = {
        k: v for k, v in {"threshold_policy": threshold_policy, "target_recall": target_recall}.items() if v
    }
    stores = flows.Stores(model_name=model_name or "")
    ev = flows.evaluate(
        flows.TrainedModel.at(model),
        stores,
        dataset=flows.DatasetRef(data, "") if data else None,
        out=out,
        gates=gates,
        slices=slices,
        eval_overrides=overrides,
    )
    m = ev.report["metrics"]
    _emit(
        {
            "gate_status": ev.report["gate_status"],
            "failures": ev.failures,
            "threshold": ev.threshold,
            "dataset_version": ev.dataset_version,
            **{k: m[k] for k in ("accuracy", "f1", "roc_auc", "pr_auc", "ece", "n")},
        }
    )
    if fail_on_gate and not ev.passed:
        raise flows.GateFailedError("quality gates failed: " + "; ".join(ev.failures[:5]))


@click.command()
@click.option("--model", "model", required=True, help="Training output folder (evaluated).")
@click.option("--eval", "eval_dir", help="Evaluation folder (default: <model>/eval).")
@click.option(
    "--model-name", help="Registered model name (default: registry config model_name, aidetect-detector)."
)
@click.option("--alias", default="candidate", show_default=True)
def register(model: str, eval_dir: str | None, model_name: str | None, alias: str) -> None:
    """Register an evaluated model that passed its gates: lineage tags, model card, the serving bundle
    (the one `aidetect optimize` wrote for MODEL, else a fresh one), the drift reference, then ALIAS."""
    from aidetect import flows

    trained = flows.TrainedModel.at(model)
    evaluation = flows.Evaluation.load(eval_dir) if eval_dir else None
    reg = flows.register(
        trained, flows.Stores(model_name=model_name or ""), evaluation=evaluation, alias=alias
    )
    _emit(reg.to_dict())
