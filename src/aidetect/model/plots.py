"""PNG plots for evaluation and training (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    _plt().close(fig)
    tmp.replace(path)
    return path


def confusion_matrix_plot(cm: Sequence[Sequence[int]], labels: Sequence[str], path: Path) -> Path:
    plt = _plt()
    m = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2.5, 1.2 * len(labels) + 2))
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=30)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, str(m[i, j]), ha="center", va="center", color="black")
    ax.set_title("confusion matrix")
    return _save(fig, path)


def roc_plot(is_fake: np.ndarray, score: np.ndarray, auc: float, path: Path) -> Path:
    from sklearn.metrics import roc_curve

    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    if len(np.unique(is_fake)) == 2:
        fpr, tpr, _ = roc_curve(is_fake, score)
        ax.plot(fpr, tpr, label=f"AUC {auc:.4f}")
    ax.plot([0, 1], [0, 1], "--", color="grey")
    ax.set_xlabel("false positive rate (real flagged as fake)")
    ax.set_ylabel("true positive rate (fake caught)")
    ax.legend(loc="lower right")
    ax.set_title("ROC")
    return _save(fig, path)


def reliability_plot(bins: dict[str, list[float]], ece: float, path: Path) -> Path:
    plt = _plt()
    conf, acc = np.asarray(bins["confidence"]), np.asarray(bins["accuracy"])
    ok = ~np.isnan(conf)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.plot(conf[ok], acc[ok], "o-", label=f"model (ECE {ece:.4f})")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper left")
    ax.set_title("reliability")
    return _save(fig, path)


def training_curves(history: Sequence[dict[str, Any]], path: Path) -> Path:
    plt = _plt()
    epochs = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.plot(epochs, [h["train_loss"] for h in history], label="train loss")
    a.plot(epochs, [h.get("val_loss", np.nan) for h in history], label="val loss")
    a.set_xlabel("epoch")
    a.legend()
    b.plot(epochs, [h.get("val_accuracy", np.nan) for h in history], label="val accuracy")
    b.plot(epochs, [h.get("val_f1", np.nan) for h in history], label="val F1")
    b.set_xlabel("epoch")
    b.legend()
    return _save(fig, path)
