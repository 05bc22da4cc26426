"""Evaluate a checkpoint on a dataset version: threshold on val, metrics, slices, plots, gates.

The output folder is published atomically and holds:
``model.pt`` (the checkpoint with its chosen ``threshold``), ``metrics.json``, ``gate_report.json``,
``gate_report.md``, ``plots/{confusion_matrix,roc,reliability}.png`` and ``eval.json`` (the summary a
pipeline reads: verdict, threshold, dataset version).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from aidetect import storage
from aidetect.data.crops import PreprocessSpec
from aidetect.decision import DecisionSpec
from aidetect.errors import DataError
from aidetect.model.checkpoint import load_checkpoint, save_checkpoint
from aidetect.model.config import EvalConfig, GatesConfig, SlicesConfig
from aidetect.model.data import SplitData, load_split, predict_loader
from aidetect.model.gates import evaluate_gates
from aidetect.model.inference import predict_images
from aidetect.model.lineage import write_json
from aidetect.model.metrics import classification_metrics, reliability_bins, roc_points
from aidetect.model.plots import confusion_matrix_plot, reliability_plot, roc_plot
from aidetect.model.report import gate_markdown
from aidetect.model.slices import PERTURBATIONS, group_indices
from aidetect.model.threshold import choose_threshold

log = logging.getLogger(__name__)
SLICE_METRICS = ("n", "accuracy", "f1", "fake_recall", "fake_precision", "roc_auc", "ece")


def predict(
    model: nn.Module, meta: dict[str, Any], data: SplitData, batch_size: int, perturbation: str | None = None
) -> np.ndarray:
    """Softmax probabilities ``[N, C]`` for ``data`` (optionally perturbed), in order."""
    fn = PERTURBATIONS[perturbation] if perturbation else None
    transform = (lambda img, _rng: fn(img)) if fn else None
    loader = predict_loader(
        data,
        int(meta["input_size"]),
        meta["mean"],
        meta["std"],
        batch_size,
        transform,
        preprocess=PreprocessSpec.from_meta(meta),
        rule=DecisionSpec.from_meta(meta),
    )
    probs, _ = predict_images(model, loader)
    return probs if len(probs) else np.zeros((0, int(meta["num_classes"])), np.float32)


def _training_sources(version: Any) -> dict[str, dict[str, int]]:
    """``{origin: {label: images}}`` of the version's train split (the model card states what the model
    was trained on); ``{"unknown": ...}`` where the source has no origin column."""
    rows = version.rows("train")
    if rows.empty:
        return {}
    origin = rows["origin"].fillna("unknown") if "origin" in rows else pd.Series("unknown", index=rows.index)
    counts = rows.groupby([origin.astype(str), rows["label"]]).size()
    out: dict[str, dict[str, int]] = {}
    for (src, label), n in counts.items():
        out.setdefault(str(src), {})[str(label)] = int(n)
    return out


def _slim(m: dict[str, Any]) -> dict[str, Any]:
    return {k: m[k] for k in SLICE_METRICS if k in m}


@contextlib.contextmanager
def _publishing(out_dir: Path) -> Iterator[Path]:
    """Yield a staging folder; on success it replaces ``out_dir`` at once (never half-written)."""
    with tempfile.TemporaryDirectory(prefix="aidetect-eval-") as staging:
        yield Path(staging)
        storage.publish_dir(staging, str(out_dir), replace=True)


def evaluate(
    model_path: str,
    version: Any,
    out_dir: str | Path,
    *,
    eval_cfg: EvalConfig,
    slices_cfg: SlicesConfig,
    gates_cfg: GatesConfig,
    champion: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Evaluate ``model_path`` on ``version`` (a ``DatasetVersion``).

    ``champion`` is ``(registered version, checkpoint path)`` of the model to compare against, or None.

    Returns the report dict (also written to ``out_dir``).
    """
    model, meta = load_checkpoint(model_path)
    labels = list(meta["labels"])
    if list(version.labels) != labels:
        raise DataError(
            f"model labels {labels} differ from dataset version {version.version_id} labels {version.labels}"
        )
    gates_cfg.check_labels(labels)
    rule = DecisionSpec.from_meta({**version.meta, **meta})
    notes: list[str] = []
    eval_split = eval_cfg.split
    eval_set = load_split(version, eval_split).head(eval_cfg.max_images)
    if len(eval_set) == 0 and eval_split == "test":
        eval_split = "val"
        eval_set = load_split(version, "val").head(eval_cfg.max_images)
        notes.append(
            "the dataset version has no test rows: evaluated on val (threshold chosen on the same rows)"
        )
    if len(eval_set) == 0:
        raise DataError(f"dataset version {version.version_id} has no {eval_split} images to evaluate on")
    thr_set = load_split(version, eval_cfg.threshold_split).head(eval_cfg.max_images)
    policy = eval_cfg.threshold_policy
    if len(thr_set):
        thr_probs = predict(model, meta, thr_set, eval_cfg.batch_size)
        threshold = choose_threshold(
            rule.fake_score(thr_probs),
            rule.is_fake(thr_set.targets),
            policy,
            eval_cfg.target_recall,
            eval_cfg.fixed_threshold,
        )
    else:
        threshold = eval_cfg.fixed_threshold
        notes.append(f"no {eval_cfg.threshold_split} rows: fixed threshold {threshold}")
    rule = rule.with_threshold(threshold)
    probs = predict(model, meta, eval_set, eval_cfg.batch_size)
    metrics = classification_metrics(probs, eval_set.targets, rule, eval_cfg.ece_bins)

    slices: dict[str, dict[str, dict[str, Any]]] = {}
    for family, groups in group_indices(eval_set.rows, slices_cfg).items():
        slices[family] = {
            g: _slim(classification_metrics(probs[idx], eval_set.targets[idx], rule, eval_cfg.ece_bins))
            for g, idx in groups.items()
        }
    perturbed: dict[str, dict[str, Any]] = {}
    for name in slices_cfg.perturbations:
        p = predict(model, meta, eval_set, eval_cfg.batch_size, perturbation=name)
        perturbed[name] = _slim(classification_metrics(p, eval_set.targets, rule, eval_cfg.ece_bins))

    champion_info = None
    if champion is not None and (gates_cfg.regression.enabled or gates_cfg.feedback.enabled):
        champ_version, champ_path = champion
        champ_model, champ_meta = load_checkpoint(champ_path)
        if list(champ_meta["labels"]) != labels or int(champ_meta["input_size"]) <= 0:
            notes.append(
                f"champion v{champ_version} has labels {champ_meta['labels']}: not comparable, skipped"
            )
        else:
            champ_probs = predict(champ_model, champ_meta, eval_set, eval_cfg.batch_size)
            champ_rule = DecisionSpec.from_meta({**version.meta, **champ_meta})
            champ_thr = champ_rule.threshold
            champ_metrics = classification_metrics(
                champ_probs, eval_set.targets, champ_rule, eval_cfg.ece_bins
            )
            champion_info = {
                "version": champ_version,
                "threshold": champ_thr,
                "metrics": _slim(champ_metrics)
                | {k: champ_metrics[k] for k in gates_cfg.regression.metrics if k in champ_metrics},
                "slices": {  # the same groups as the challenger's, for the feedback gate
                    family: {
                        g: _slim(classification_metrics(champ_probs[idx], eval_set.targets[idx], champ_rule))
                        for g, idx in groups.items()
                    }
                    for family, groups in group_indices(eval_set.rows, slices_cfg).items()
                    if family == "provenance"
                },
            }
    gates = evaluate_gates(gates_cfg, metrics, slices, perturbed, champion_info)
    gates["notes"] = notes + gates["notes"]

    new_meta = {
        **meta,
        **rule.to_meta(),
        "threshold_policy": policy,
        "dataset_version": version.version_id,
        "eval": {
            "split": eval_split,
            "accuracy": metrics["accuracy"],
            "f1": metrics["f1"],
            "roc_auc": metrics["roc_auc"],
            "gate_status": "passed" if gates["passed"] else "failed",
        },
    }
    report = {
        "passed": gates["passed"],
        "gate_status": "passed" if gates["passed"] else "failed",
        "dataset_version": version.version_id,
        "eval_split": eval_split,
        "labels": labels,
        "real_label": rule.real_label,
        "threshold": threshold,
        "threshold_policy": policy,
        "model": {
            "arch": meta["arch"],
            "input_size": meta["input_size"],
            "preprocess": PreprocessSpec.from_meta(meta).to_meta(),
            "flip_average": bool(meta.get("flip_average", False)),
            "trained_on": meta.get("dataset_version"),
        },
        "trained_on": _training_sources(version),
        "metrics": metrics,
        "slices": slices,
        "perturbations": perturbed,
        "champion": champion_info,
        "gates": gates,
    }
    out = Path(out_dir)
    with _publishing(out) as stage:
        save_checkpoint(str(stage / "model.pt"), model, new_meta)
        write_json(stage / "metrics.json", {"metrics": metrics, "slices": slices, "perturbations": perturbed})
        write_json(stage / "gate_report.json", report)
        (stage / "gate_report.md").write_text(gate_markdown(report))
        plots = stage / "plots"
        confusion_matrix_plot(metrics["confusion"], labels, plots / "confusion_matrix.png")
        is_fake, score = rule.is_fake(eval_set.targets).astype(int), rule.fake_score(probs)
        roc_plot(is_fake, score, metrics["roc_auc"], plots / "roc.png")
        write_json(stage / "roc.json", roc_points(is_fake, score))
        reliability_plot(
            reliability_bins(probs, eval_set.targets, eval_cfg.ece_bins),
            metrics["ece"],
            plots / "reliability.png",
        )
        write_json(
            stage / "eval.json",
            {
                k: report[k]
                for k in (
                    "passed",
                    "gate_status",
                    "dataset_version",
                    "eval_split",
                    "threshold",
                    "threshold_policy",
                )
            }
            | {"failures": gates["failures"], "model": "model.pt"},
        )
    return report
