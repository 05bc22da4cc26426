"""Choosing the decision threshold on the fake score from validation predictions."""

from __future__ import annotations

import math

import numpy as np

from aidetect.errors import ConfigError


def f1_curve(score: np.ndarray, is_fake: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every distinct score as threshold (``score >= t`` is fake): thresholds, F1 and recall."""
    order = np.argsort(-score, kind="stable")
    s, y = score[order], is_fake[order].astype(np.int64)
    tp, fp = np.cumsum(y), np.cumsum(1 - y)
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # last index of each run of equal scores
    tp, fp, thr = tp[last], fp[last], s[last]
    positives = max(1, int(y.sum()))
    precision = tp / np.maximum(1, tp + fp)
    recall = tp / positives
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(1e-12, precision + recall), 0.0)
    return thr, f1, recall


def choose_threshold(
    score: np.ndarray, is_fake: np.ndarray, policy: str, target_recall: float = 0.95, fixed: float = 0.5
) -> float:
    """A threshold on the fake score by ``policy``.

    - ``max_f1``: the threshold with the best fake-vs-real F1 on these predictions
    - ``target_recall``: the highest threshold whose fake recall reaches ``target_recall``
    - ``fixed``: ``fixed``
    Without both classes present the threshold falls back to ``fixed``.
    """
    if policy == "fixed":
        return float(fixed)
    score, is_fake = np.asarray(score, np.float64), np.asarray(is_fake).astype(bool)
    if len(score) == 0 or is_fake.all() or not is_fake.any():
        return float(fixed)
    if policy == "max_f1":
        thr, f1, _ = f1_curve(score, is_fake)
        return float(thr[int(np.argmax(f1))])
    if policy == "target_recall":
        fakes = np.sort(score[is_fake])[::-1]
        k = max(1, math.ceil(target_recall * len(fakes) - 1e-9))
        return float(fakes[k - 1])
    raise ConfigError(f"threshold_policy: unknown {policy!r}")
