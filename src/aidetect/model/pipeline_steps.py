"""The three chainable steps behind ``aidetect train | evaluate | register`` (also used by pipelines).

train    -> ``<out>/model.pt`` + ``<out>/run.json``
evaluate -> ``<model dir>/eval/`` (or ``--out``): thresholded ``model.pt``, gate report, plots, ``eval.json``
register -> logs checkpoint, reports, plots and model card to the training run, then a new registered
            version with lineage tags and the ``candidate`` alias; ``<model dir>/registered.json``
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from aidetect.errors import AidetectError, DataError
from aidetect.model.lineage import read_json, write_json

EVAL_DIR = "eval"


class GateFailedError(AidetectError):
    """The model failed its quality gates, so it is not registered."""

    exit_code = 3


def _model_file(model: str | Path) -> Path:
    p = Path(model)
    f = p / "model.pt" if p.is_dir() else p
    if not f.exists():
        raise DataError(f"no model checkpoint at {f} (run aidetect train first)")
    return f


def _champion(gates_cfg: Any, model_name: str, tmp: Path) -> tuple[str, str] | None:
    from aidetect import registry

    if not gates_cfg.regression.enabled:
        return None
    version = registry.resolve_alias(model_name, gates_cfg.regression.alias)
    if version is None:
        return None
    path = registry.download_artifacts(model_name, version, "checkpoint/model.pt", tmp)
    return version, str(path)


def evaluate_step(
    model: str,
    data: str | None = None,
    out: str | None = None,
    *,
    gates: str | None = None,
    slices: str | None = None,
    eval_overrides: dict[str, Any] | None = None,
    model_name: str | None = None,
) -> dict[str, Any]:
    """Evaluate the checkpoint in ``model`` (a training folder or ``model.pt``) and gate it."""
    from aidetect import registry
    from aidetect.data.versions import open_version
    from aidetect.model.checkpoint import read_checkpoint
    from aidetect.model.config import load_eval_config
    from aidetect.model.evaluate import evaluate
    from aidetect.model.gates import load_gates_config
    from aidetect.model.slices import load_slices_config

    eval_cfg = load_eval_config(overrides=eval_overrides)
    gates_cfg = load_gates_config(gates)
    slices_cfg = load_slices_config(slices)
    model_file = _model_file(model)
    meta = read_checkpoint(str(model_file))["meta"]
    version = open_version(data or meta.get("dataset_version", ""))
    out_dir = Path(out) if out else model_file.parent / EVAL_DIR
    if out_dir.resolve() == model_file.parent.resolve():
        raise AidetectError(
            "--out must not be the model folder itself (use a subfolder, default <model>/eval)"
        )
    name = model_name or registry.model_name()
    with tempfile.TemporaryDirectory(prefix="aidetect-champion-") as tmp:
        champion = _champion(gates_cfg, name, Path(tmp))
        report = evaluate(
            str(model_file),
            version,
            out_dir,
            eval_cfg=eval_cfg,
            slices_cfg=slices_cfg,
            gates_cfg=gates_cfg,
            champion=champion,
        )
    run_file = model_file.parent / "run.json"
    run_id = read_json(run_file).get("run_id") if run_file.exists() else None
    if run_id:
        m = report["metrics"]
        keys = ("accuracy", "f1", "macro_f1", "fake_recall", "roc_auc", "pr_auc", "ece", "threshold")
        registry.log_metrics(run_id, {f"eval_{k}": m[k] for k in keys})
        registry.set_run_tags(
            run_id, {"gate_status": report["gate_status"], "eval_dataset_version": version.version_id}
        )
        for f in ("gate_report.json", "gate_report.md", "metrics.json"):
            registry.log_artifacts(run_id, out_dir / f, "reports")
        registry.log_artifacts(run_id, out_dir / "plots", "plots")
    return report


def register_step(
    model: str, eval_dir: str | None = None, *, model_name: str | None = None, alias: str = "candidate"
) -> dict[str, Any]:
    """Register an evaluated, gate-passing model; refuses (GateFailedError) when its gates failed."""
    from aidetect import registry
    from aidetect.model.report import model_card

    model_dir = Path(model)
    if model_dir.is_file():
        model_dir = model_dir.parent
    ev_dir = Path(eval_dir) if eval_dir else model_dir / EVAL_DIR
    if not (ev_dir / "eval.json").exists():
        raise DataError(f"no evaluation in {ev_dir} (run aidetect evaluate --model {model_dir} first)")
    if not (model_dir / "run.json").exists():
        raise DataError(f"no finished training run in {model_dir} (run.json missing)")
    ev, run = read_json(ev_dir / "eval.json"), read_json(model_dir / "run.json")
    if not ev.get("passed"):
        reasons = "; ".join(ev.get("failures", [])[:5]) or "see gate_report.md"
        raise GateFailedError(f"quality gates failed, not registered: {reasons}")
    run_id = run.get("run_id")
    if not run_id:
        raise DataError(
            f"the training run in {model_dir} was not tracked (track: false), so it cannot be registered"
        )
    report = read_json(ev_dir / "gate_report.json")
    train_cfg = (
        read_json(model_dir / "config.json").get("train", {}) if (model_dir / "config.json").exists() else {}
    )
    name = model_name or registry.model_name()
    registry.check_reachable()
    with tempfile.TemporaryDirectory(prefix="aidetect-register-") as tmp:
        stage = Path(tmp)
        (stage / "checkpoint").mkdir()
        shutil.copy2(ev_dir / "model.pt", stage / "checkpoint" / "model.pt")
        (stage / "reports").mkdir()
        for f in ("gate_report.json", "gate_report.md", "metrics.json"):
            shutil.copy2(ev_dir / f, stage / "reports" / f)
        shutil.copytree(ev_dir / "plots", stage / "plots")
        if (model_dir / "plots").is_dir():
            shutil.copytree(model_dir / "plots", stage / "plots", dirs_exist_ok=True)
        card = model_card(report, run, train_cfg)
        (stage / "model_card.md").write_text(card)
        for part in ("checkpoint", "reports", "plots"):
            registry.log_artifacts(run_id, stage / part, part)
        registry.log_artifacts(run_id, stage / "model_card.md", None)
    tags = {
        "dataset_version": run["dataset_version"],
        "eval_dataset_version": ev["dataset_version"],
        "git_commit": run.get("git_commit", "unknown"),
        "gate_status": "passed",
        "threshold": f"{float(ev['threshold']):.6f}",
        "arch": report["model"]["arch"],
    }
    info = registry.register_version(run_id, name, tags=tags, description=card[:4000], alias=alias)
    result = {
        "name": info.name,
        "version": info.version,
        "uri": info.uri,
        "aliases": list(info.aliases),
        "run_id": run_id,
        "tags": info.tags,
    }
    write_json(model_dir / "registered.json", result)
    return result
