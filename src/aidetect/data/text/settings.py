"""The text data concern's configuration (``configs/text_data.yaml``): columns, labels, limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aidetect import config
from aidetect.data.config import SPLITS, normalize_name
from aidetect.errors import ConfigError


def _default_synonyms() -> dict[str, list[str]]:
    return {
        "human": ["human", "real", "human-written", "original", "0"],
        "ai": ["ai", "fake", "machine", "generated", "ai-generated", "llm", "synthetic", "1"],
    }


@dataclass
class TextDataConfig:
    """How text sources (CSV, JSONL, parquet) become dataset versions."""

    # Ordered label set (class index = position) and the authentic one; every other label is a kind of AI.
    labels: list[str] = field(default_factory=lambda: ["human", "ai"])
    real_label: str = "human"
    synonyms: dict[str, list[str]] = field(default_factory=_default_synonyms)
    text_column: str = "text"
    label_column: str = "label"
    # Optional columns ("" = not used; a named column that is absent is simply not used).
    group_column: str = "group"  # rewrites of one original share a group and never straddle splits
    domain_column: str = "domain"
    generator_column: str = "generator"
    split_fractions: dict[str, float] = field(default_factory=lambda: {"train": 0.8, "val": 0.1, "test": 0.1})
    # Per-text limits, on the UTF-8 bytes of the normalised text.
    max_bytes: int = 100_000
    # Rows that are empty, too long, not UTF-8 or carry control characters are skipped and listed while
    # their share stays at or below this; above it the ingest fails and writes nothing.
    max_skip_fraction: float = 0.01
    shard_max_bytes: int = 64 * 1024 * 1024

    def validate(self) -> None:
        if len(self.labels) < 2 or len({normalize_name(x) for x in self.labels}) != len(self.labels):
            raise ConfigError(f"labels: need at least two distinct labels, got {self.labels}")
        if self.real_label not in self.labels:
            raise ConfigError(f"real_label: {self.real_label!r} is not one of the labels {self.labels}")
        if not self.text_column or not self.label_column:
            raise ConfigError("text_column/label_column: must be set")
        unknown = sorted(set(self.split_fractions) - set(SPLITS))
        if unknown:
            raise ConfigError(f"split_fractions.{unknown[0]}: unknown split (known: {', '.join(SPLITS)})")
        fractions = {s: float(self.split_fractions.get(s, 0.0)) for s in SPLITS}
        if min(fractions.values()) < 0 or abs(sum(fractions.values()) - 1) > 1e-6 or fractions["train"] <= 0:
            raise ConfigError(f"split_fractions: must be non-negative, sum to 1, train > 0; got {fractions}")
        self.split_fractions = fractions
        if self.max_bytes <= 0 or self.shard_max_bytes <= 0:
            raise ConfigError("max_bytes and shard_max_bytes: must be positive")
        if not 0.0 <= self.max_skip_fraction <= 1.0:
            raise ConfigError("max_skip_fraction: must be between 0 and 1")


def load_text_data_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> TextDataConfig:
    """``configs/text_data.yaml`` < ``AIDETECT_TEXT_DATA__*`` env < ``overrides``."""
    return config.load(TextDataConfig, "text_data", path=path, overrides=overrides)
