"""The one decision rule: class probabilities -> label and fake score (numpy only, no torch).

Every consumer of model outputs decides through :class:`DecisionSpec`: evaluation and the gates (which
certify the rule), the predictor, the inference log, the drift reference profile and the explainer. The
spec travels with the model: checkpoint meta and ``bundle.json`` carry ``labels``, ``real_label`` and
``threshold``.

Which label is the authentic one (``REAL`` for images, ``human`` for text) is decided once, at ingest,
and every other label is a kind of fake. The *fake score* of an item is the summed probability of the
fake classes (``1 - p(real)``; for binary models exactly ``p(fake)``). The rule: fake score at or over
the threshold -> the most probable fake class, else the real class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aidetect.errors import DataError

DEFAULT_THRESHOLD = 0.5


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``[N, C]`` logits (shifted by the row maximum, so large logits do not overflow)."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class DecisionSpec:
    """Labels in model-output column order, which of them is real, and the fake-score threshold."""

    labels: tuple[str, ...]
    real_label: str
    threshold: float = DEFAULT_THRESHOLD

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(self.labels))
        if len(self.labels) < 2 or len(set(self.labels)) != len(self.labels):
            raise DataError(f"decision: labels must be 2+ distinct names, got {list(self.labels)}")
        if self.real_label not in self.labels:
            raise DataError(f"decision: real_label {self.real_label!r} is not one of {list(self.labels)}")
        if not 0.0 <= float(self.threshold) <= 1.0:
            raise DataError(f"decision: threshold must be in [0, 1], got {self.threshold}")
        object.__setattr__(self, "threshold", float(self.threshold))

    # -- structure -----------------------------------------------------------------------------------
    @property
    def real_index(self) -> int:
        return self.labels.index(self.real_label)

    @property
    def fake_indices(self) -> list[int]:
        return [i for i in range(len(self.labels)) if i != self.real_index]

    @property
    def fake_labels(self) -> list[str]:
        return [self.labels[i] for i in self.fake_indices]

    @property
    def binary(self) -> bool:
        return len(self.labels) == 2

    @property
    def fake_label(self) -> str | None:
        """The single fake label of a binary model (its positive class), else None."""
        return self.fake_labels[0] if self.binary else None

    def with_threshold(self, threshold: float) -> DecisionSpec:
        return DecisionSpec(self.labels, self.real_label, threshold)

    # -- the rule ------------------------------------------------------------------------------------
    def fake_score(self, probs: np.ndarray) -> np.ndarray:
        """Summed fake-class probability per row of ``probs`` ``[N, C]`` (float32)."""
        probs = self._check(probs)
        fake = self.fake_indices
        score = probs[:, fake[0]] if len(fake) == 1 else probs[:, fake].sum(axis=1)
        return np.ascontiguousarray(score, dtype=np.float32)

    def decide(self, probs: np.ndarray) -> np.ndarray:
        """Predicted class index per row: real below the threshold, else the most probable fake class."""
        probs = self._check(probs)
        fake = np.asarray(self.fake_indices)
        best_fake = fake[np.argmax(probs[:, fake], axis=1)]
        return np.where(self.fake_score(probs) >= self.threshold, best_fake, self.real_index).astype(np.int64)

    def names(self, indices: np.ndarray | Sequence[int]) -> list[str]:
        return [self.labels[int(i)] for i in indices]

    def is_fake(self, targets: np.ndarray | Sequence[int]) -> np.ndarray:
        """True where a class index is one of the fake classes."""
        return np.asarray(targets, dtype=np.int64) != self.real_index

    def _check(self, probs: np.ndarray) -> np.ndarray:
        probs = np.asarray(probs)
        if probs.ndim != 2 or probs.shape[1] != len(self.labels):
            raise DataError(f"decision: expected probabilities [N, {len(self.labels)}], got {probs.shape}")
        return probs

    # -- persistence ---------------------------------------------------------------------------------
    def to_meta(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "real_label": self.real_label, "threshold": self.threshold}

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any], threshold: float | None = None) -> DecisionSpec:
        """Read the spec from checkpoint meta, ``bundle.json`` or ``version.json``.

        Artifacts written before ``real_label`` existed are read as they were decided then: a binary
        ``positive_label`` names the fake class, otherwise the first label is real."""
        labels = list(meta.get("labels") or [])
        real = meta.get("real_label")
        if not real:
            positive = meta.get("positive_label")
            if len(labels) == 2 and positive in labels:
                real = labels[1 - labels.index(positive)]
            elif labels:
                real = labels[0]
        thr = threshold if threshold is not None else meta.get("threshold")
        return cls(tuple(labels), str(real), DEFAULT_THRESHOLD if thr is None else float(thr))


def real_label_for(labels: Sequence[str], configured: str = "") -> str:
    """The authentic label of a label set: ``configured`` when given, else the first label."""
    if configured:
        if configured not in labels:
            raise DataError(f"real_label {configured!r} is not one of {list(labels)}")
        return configured
    return labels[0]
