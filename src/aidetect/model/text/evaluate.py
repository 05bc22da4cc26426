"""Evaluate a text model (its ONNX graph, as served): threshold on val, metrics, slices, perturbations,
gates. The same decision rule, metrics, threshold policies and gates as images; text slices are
``domain``, ``generator`` and ``length`` (characters), and the perturbations are lowercasing, keeping
the first 256 characters and removing line breaks.

The output folder (published in one rename) mirrors the image evaluation: ``model.onnx`` and
``meta.json`` with the chosen ``threshold``, ``metrics.json``, ``gate_report.{json,md}``, ``roc.json``,
``plots/`` and ``eval.json``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aidetect.data.versions import DatasetVersion
from aidetect.decision import DecisionSpec
from aidetect.errors import DataError
from aidetect.model.evaluate import SLICE_METRICS, _publishing
from aidetect.model.gates import evaluate_gates
from aidetect.model.lineage import read_json, write_json
from aidetect.model.metrics import classification_metrics, reliability_bins, roc_points
from aidetect.model.plots import confusion_matrix_plot, reliability_plot, roc_plot
from aidetect.model.report import gate_markdown
from aidetect.model.text import runtime
from aidetect.model.text.config import TEXT_GROUPS, TextEvalConfig, TextGatesConfig
from aidetect.model.text.train import load_text_split
from aidetect.model.threshold import choose_threshold

PERTURB: dict[str, Callable[[str], str]] = {
    "lowercase": str.lower,
    "first_256": lambda t: t[:256],
    "one_line": lambda t: " ".join(t.split()),
}


def length_bucket(n: int, edges: list[int]) -> str:
    lo = 0
    for edge in edges:
        if n <= edge:
            return f"{lo + 1}-{edge}" if lo else f"<={edge}"
        lo = edge
    return f">{lo}"


def slice_groups(rows: pd.DataFrame, cfg: TextEvalConfig) -> dict[str, dict[str, np.ndarray]]:
    """``{family: {value: row positions}}`` for the configured families the data has."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for family in cfg.groups:
        column = TEXT_GROUPS[family]
        if column not in rows or rows[column].isna().all():
            continue
        if family == "length":
            values = np.array([length_bucket(int(n), cfg.length_edges) for n in rows[column]])
        else:
            values = rows[column].fillna("unknown").astype(str).to_numpy()
        out[family] = {str(v): np.nonzero(values == v)[0] for v in sorted(set(values))}
    return out


def _slim(m: dict[str, Any]) -> dict[str, Any]:
    return {k: m[k] for k in SLICE_METRICS if k in m}


def evaluate_text(
    model_dir: str | Path,
    version: DatasetVersion,
    out_dir: str | Path,
    *,
    eval_cfg: TextEvalConfig,
    gates_cfg: TextGatesConfig,
) -> dict[str, Any]:
    """Evaluate the text model in ``model_dir`` on ``version``; returns the report (also written)."""
    model_dir = Path(model_dir)
    meta = dict(read_json(model_dir / "meta.json"))
    if list(version.labels) != list(meta["labels"]):
        raise DataError(f"model labels {meta['labels']} differ from dataset version labels {version.labels}")
    gates_cfg.check_labels(list(meta["labels"]))
    rule = DecisionSpec.from_meta({**version.meta, **meta})
    sess = runtime.session(model_dir / "model.onnx")
    max_len = int(meta["max_len"])
    notes: list[str] = []
    split = eval_cfg.split
    texts, targets, rows = load_text_split(version, split, eval_cfg.max_images)
    if not texts and split == "test":
        split = "val"
        texts, targets, rows = load_text_split(version, split, eval_cfg.max_images)
        notes.append(
            "the dataset version has no test rows: evaluated on val (threshold chosen on the same rows)"
        )
    if not texts:
        raise DataError(f"dataset version {version.version_id} has no {split} texts to evaluate on")
    thr_texts, thr_targets, _ = load_text_split(version, eval_cfg.threshold_split, eval_cfg.max_images)
    if thr_texts:
        p = runtime.probabilities(sess, thr_texts, max_len, eval_cfg.batch_size)
        threshold = choose_threshold(
            rule.fake_score(p),
            rule.is_fake(thr_targets),
            eval_cfg.threshold_policy,
            eval_cfg.target_recall,
            eval_cfg.fixed_threshold,
        )
    else:
        threshold = eval_cfg.fixed_threshold
        notes.append(f"no {eval_cfg.threshold_split} rows: fixed threshold {threshold}")
    rule = rule.with_threshold(threshold)
    probs = runtime.probabilities(sess, texts, max_len, eval_cfg.batch_size)
    metrics = classification_metrics(probs, targets, rule, eval_cfg.ece_bins)
    slices = {
        family: {
            g: _slim(classification_metrics(probs[i], targets[i], rule, eval_cfg.ece_bins))
            for g, i in groups.items()
        }
        for family, groups in slice_groups(rows, eval_cfg).items()
    }
    perturbed = {
        name: _slim(
            classification_metrics(
                runtime.probabilities(sess, [PERTURB[name](t) for t in texts], max_len, eval_cfg.batch_size),
                targets,
                rule,
                eval_cfg.ece_bins,
            )
        )
        for name in eval_cfg.perturbations
    }
    gates = evaluate_gates(gates_cfg, metrics, slices, perturbed, None)
    gates["notes"] = notes + gates["notes"]
    status = "passed" if gates["passed"] else "failed"
    report = {
        "modality": "text",
        "passed": gates["passed"],
        "gate_status": status,
        "dataset_version": version.version_id,
        "eval_split": split,
        "labels": list(rule.labels),
        "real_label": rule.real_label,
        "threshold": threshold,
        "threshold_policy": eval_cfg.threshold_policy,
        "model": {
            "arch": meta["arch"],
            "input_size": max_len,
            "max_len": max_len,
            "trained_on": meta.get("dataset_version"),
        },
        "metrics": metrics,
        "slices": slices,
        "perturbations": perturbed,
        "champion": None,
        "gates": gates,
    }
    new_meta = {
        **meta,
        **rule.to_meta(),
        "threshold_policy": eval_cfg.threshold_policy,
        "gate_status": status,
        "eval": {"split": split, **{k: metrics[k] for k in ("accuracy", "f1", "roc_auc")}},
    }
    with _publishing(Path(out_dir)) as stage:
        shutil.copyfile(model_dir / "model.onnx", stage / "model.onnx")
        write_json(stage / "meta.json", new_meta)
        write_json(stage / "metrics.json", {"metrics": metrics, "slices": slices, "perturbations": perturbed})
        write_json(stage / "gate_report.json", report)
        (stage / "gate_report.md").write_text(gate_markdown(report))
        is_fake, score = rule.is_fake(targets).astype(int), rule.fake_score(probs)
        write_json(stage / "roc.json", roc_points(is_fake, score))
        plots = stage / "plots"
        confusion_matrix_plot(metrics["confusion"], list(rule.labels), plots / "confusion_matrix.png")
        roc_plot(is_fake, score, metrics["roc_auc"], plots / "roc.png")
        reliability_plot(
            reliability_bins(probs, targets, eval_cfg.ece_bins), metrics["ece"], plots / "reliability.png"
        )
        keys = ("passed", "gate_status", "dataset_version", "eval_split", "threshold", "threshold_policy")
        write_json(
            stage / "eval.json",
            {k: report[k] for k in keys}
            | {"failures": gates["failures"], "model": "model.onnx", "modality": "text"},
        )
    return report
