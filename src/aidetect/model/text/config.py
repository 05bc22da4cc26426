"""Configs of the text model concern: training (``configs/text_train.yaml``), evaluation and slices
(``configs/text_eval.yaml``) and gates (``configs/text_gates.yaml``, the image gates' schema)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aidetect import config
from aidetect.errors import ConfigError
from aidetect.model.config import EvalConfig, GatesConfig
from aidetect.model.text.cnn import CnnParams
from aidetect.model.text.tfidf import TfidfParams

ARCHS = ("tfidf_lr", "byte_cnn")
# slice family -> manifest column (``length`` is bucketed from ``nchars``)
TEXT_GROUPS = {"domain": "domain", "generator": "generator", "length": "nchars"}
TEXT_PERTURBATIONS = ("lowercase", "first_256", "one_line")


@dataclass
class TextTrainConfig:
    arch: str = "tfidf_lr"
    tfidf: TfidfParams = field(default_factory=TfidfParams)
    cnn: CnnParams = field(default_factory=CnnParams)
    experiment: str = "aidetect-text"
    # A trained graph must agree with its training framework to this much (max probability difference).
    parity_tolerance: float = 1e-4

    def validate(self) -> None:
        if self.arch not in ARCHS:
            raise ConfigError(f"arch: unknown {self.arch!r} (known: {', '.join(ARCHS)})")
        if self.tfidf.ngram_max < 1 or self.tfidf.max_len < 1 or self.cnn.max_len < 8:
            raise ConfigError("tfidf.ngram_max >= 1, tfidf.max_len >= 1, cnn.max_len >= 8")
        if self.tfidf.words < 0:
            raise ConfigError("tfidf.words: expected >= 0 (0: byte n-grams only)")
        if self.tfidf.words and self.tfidf.word_max_bytes <= self.tfidf.ngram_max:
            raise ConfigError("tfidf.word_max_bytes: must exceed tfidf.ngram_max (shorter words are n-grams)")
        if self.tfidf.class_weight not in ("", "balanced"):
            raise ConfigError("tfidf.class_weight: expected '' or 'balanced'")

    @property
    def max_len(self) -> int:
        return self.tfidf.max_len if self.arch == "tfidf_lr" else self.cnn.max_len


@dataclass
class TextEvalConfig(EvalConfig):
    groups: list[str] = field(default_factory=lambda: list(TEXT_GROUPS))
    length_edges: list[int] = field(default_factory=lambda: [256, 1024])  # characters
    perturbations: list[str] = field(default_factory=lambda: list(TEXT_PERTURBATIONS))

    def validate(self) -> None:
        super().validate()
        for i, g in enumerate(self.groups):
            if g not in TEXT_GROUPS:
                raise ConfigError(f"groups[{i}]: unknown slice {g!r} (known: {', '.join(TEXT_GROUPS)})")
        for i, p in enumerate(self.perturbations):
            if p not in TEXT_PERTURBATIONS:
                known = ", ".join(TEXT_PERTURBATIONS)
                raise ConfigError(f"perturbations[{i}]: unknown {p!r} (known: {known})")
        if any(b <= a for a, b in zip(self.length_edges, self.length_edges[1:], strict=False)):
            raise ConfigError("length_edges: must be increasing")


@dataclass
class TextGatesConfig(GatesConfig):
    """The image gates with text slice families (domain, generator, length)."""

    def validate(self) -> None:
        families, self.slices.families = self.slices.families, []
        try:
            super().validate()
        finally:
            self.slices.families = families
        for i, fam in enumerate(families):
            if fam not in TEXT_GROUPS:
                known = ", ".join(TEXT_GROUPS)
                raise ConfigError(f"slices.families[{i}]: unknown slice {fam!r} (known: {known})")


def load_text_train_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> TextTrainConfig:
    return config.load(TextTrainConfig, "text_train", path=path, overrides=overrides)


def load_text_eval_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> TextEvalConfig:
    return config.load(TextEvalConfig, "text_eval", path=path, overrides=overrides)


def load_text_gates_config(path: str | Path | None = None) -> TextGatesConfig:
    return config.load(TextGatesConfig, "text_gates", path=path)
