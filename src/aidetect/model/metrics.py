"""Classification metrics for real-vs-fake detection, binary or with several fake classes.

Predictions come from the one decision rule, :class:`aidetect.decision.DecisionSpec` (which label is
real, the fake-score threshold), so what evaluation and the gates certify is what the server answers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aidetect.decision import DecisionSpec


def confusion(targets: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (targets, preds), 1)
    return cm


def expected_calibration_error(probs: np.ndarray, targets: np.ndarray, bins: int = 15) -> float:
    """ECE of the top-label confidence over ``bins`` equal-width bins."""
    if len(targets) == 0:
        return float("nan")
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == targets).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def reliability_bins(probs: np.ndarray, targets: np.ndarray, bins: int = 15) -> dict[str, list[float]]:
    """Per-bin mean confidence, accuracy and count (for the reliability diagram)."""
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == targets).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    out: dict[str, list[float]] = {"confidence": [], "accuracy": [], "count": []}
    for b in range(bins):
        m = idx == b
        out["confidence"].append(float(conf[m].mean()) if m.any() else float("nan"))
        out["accuracy"].append(float(correct[m].mean()) if m.any() else float("nan"))
        out["count"].append(float(m.sum()))
    return out


def _safe_auc(fn: Any, y: np.ndarray, s: np.ndarray) -> float:
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(fn(y, s))


def classification_metrics(
    probs: np.ndarray,
    targets: np.ndarray,
    spec: DecisionSpec,
    ece_bins: int = 15,
) -> dict[str, Any]:
    """Flat metrics: ``accuracy``, ``f1`` (FAKE F1 when binary, else macro), ``macro_f1``,
    ``precision.<label>``/``recall.<label>``/``f1.<label>``, ``fake_recall``, ``fake_precision``,
    ``roc_auc``/``pr_auc`` (fake score vs real-or-fake), ``ece``, ``n``, and ``confusion`` (nested list)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    labels = spec.labels
    k = len(labels)
    targets = np.asarray(targets, dtype=np.int64)
    preds = spec.decide(probs) if len(targets) else np.zeros(0, np.int64)
    cm = confusion(targets, preds, k)
    out: dict[str, Any] = {"n": len(targets)}
    out["accuracy"] = float((preds == targets).mean()) if len(targets) else float("nan")
    f1s = []
    for i, label in enumerate(labels):
        tp, fp, fn = cm[i, i], cm[:, i].sum() - cm[i, i], cm[i, :].sum() - cm[i, i]
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else float("nan")
        f = 2 * p * r / (p + r) if (tp + fn) and (p + r) else 0.0
        out[f"precision.{label}"], out[f"recall.{label}"], out[f"f1.{label}"] = float(p), float(r), float(f)
        out[f"support.{label}"] = int(cm[i, :].sum())
        if tp + fn:
            f1s.append(f)
    out["macro_f1"] = float(np.mean(f1s)) if f1s else float("nan")
    is_fake = spec.is_fake(targets).astype(np.int64)
    said_fake = spec.is_fake(preds).astype(np.int64)
    tp = int((is_fake & said_fake).sum())
    out["fake_recall"] = tp / int(is_fake.sum()) if is_fake.sum() else float("nan")
    out["fake_precision"] = tp / int(said_fake.sum()) if said_fake.sum() else 0.0
    fr, fp_ = out["fake_recall"], out["fake_precision"]
    out["fake_f1"] = 2 * fr * fp_ / (fr + fp_) if fr == fr and (fr + fp_) else 0.0
    out["f1"] = out[f"f1.{spec.fake_label}"] if spec.binary else out["macro_f1"]
    score = spec.fake_score(probs) if len(targets) else np.zeros(0)
    out["roc_auc"] = _safe_auc(roc_auc_score, is_fake, score)
    out["pr_auc"] = _safe_auc(average_precision_score, is_fake, score)
    out["ece"] = expected_calibration_error(probs, targets, ece_bins)
    out["threshold"] = spec.threshold
    out["confusion"] = cm.tolist()
    return out


def roc_points(is_fake: np.ndarray, score: np.ndarray, limit: int = 200) -> dict[str, list[float]]:
    """At most ``limit`` points of the ROC curve (fake vs real), for the KFP UI; empty with one class."""
    from sklearn.metrics import roc_curve

    if len(np.unique(is_fake)) < 2:
        return {}
    fpr, tpr, thr = roc_curve(is_fake, score)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(limit, len(fpr))).astype(int))
    thr = np.clip(thr[keep], 0.0, 1.0)  # sklearn puts +inf first
    return {"fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist(), "thresholds": thr.tolist()}
