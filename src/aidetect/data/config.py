"""The data room's configuration: ingest (``configs/data.yaml``: label set, splits, limits) and the
validation suite (``configs/validation.yaml``)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aidetect import config
from aidetect.data.imaging import DEFAULT_MAX_PIXELS
from aidetect.errors import ConfigError

SPLITS: tuple[str, ...] = ("train", "val", "test")
CRITICAL, WARNING = "critical", "warning"  # validation severities

# Folder names accepted for each split (compared case-insensitively).
SPLIT_SYNONYMS: dict[str, tuple[str, ...]] = {
    "train": ("train", "training"),
    "val": ("val", "valid", "validation", "dev"),
    "test": ("test", "testing", "eval"),
}


def _default_synonyms() -> dict[str, list[str]]:
    return {
        "REAL": ["real", "human", "authentic", "genuine", "photo", "natural"],
        "FAKE": ["fake", "ai", "generated", "ai-generated", "synthetic", "gan", "diffusion"],
    }


@dataclass
class DataConfig:
    """How sources become dataset versions."""

    # Ordered label set: the class index is the position. Binary REAL/FAKE by default.
    labels: list[str] = field(default_factory=lambda: ["REAL", "FAKE"])
    # The authentic class ("" = the first label); every other label is a kind of fake. Decided here, once,
    # and carried through version.json, checkpoint meta and bundle.json to the decision rule.
    real_label: str = ""
    # Extra names per label (case-insensitive); entries for labels not in ``labels`` are ignored.
    synonyms: dict[str, list[str]] = field(default_factory=_default_synonyms)
    # Fractions used to assign splits from the sha256 where the source has none.
    split_fractions: dict[str, float] = field(default_factory=lambda: {"train": 0.8, "val": 0.1, "test": 0.1})
    # Corrupt images are skipped and listed while their share stays at or below this; above it is fatal.
    max_corrupt_fraction: float = 0.01
    # Fully decode each image at ingest (cheap for small images); False checks only the header.
    verify_decode: bool = True
    # Images above this many pixels are treated as unusable (refused before decoding).
    max_pixels: int = DEFAULT_MAX_PIXELS
    # keep: every file becomes a row; drop: only the first copy of identical bytes with the same label.
    duplicates: str = "keep"
    # Parquet sources: column names ("" = detect: an ``image`` struct with ``bytes`` or a binary column).
    image_column: str = ""
    label_column: str = "label"
    # Optional column copied to the manifest's ``origin`` (e.g. HF ``source``: coco, diffusiondb).
    origin_column: str = "source"
    # Names for integer labels when the parquet schema metadata carries none (index -> name).
    label_names: list[str] = field(default_factory=list)
    # auto: derive CIFAR-10 content classes from CIFAKE file names when every name has that form.
    content_class: str = "auto"
    # Processes that hash and inspect images (0 = one per available core; small sources stay in-process).
    workers: int = 0
    # A new shard starts after this many bytes of images.
    shard_max_bytes: int = 64 * 1024 * 1024

    def validate(self) -> None:
        if len(self.labels) < 2:
            raise ConfigError("labels: need at least two labels")
        norm = [normalize_name(x) for x in self.labels]
        if len(set(norm)) != len(norm):
            raise ConfigError(f"labels: duplicate names {self.labels}")
        if self.real_label and self.real_label not in self.labels:
            raise ConfigError(f"real_label: {self.real_label!r} is not one of the labels {self.labels}")
        unknown = sorted(set(self.split_fractions) - set(SPLITS))
        if unknown:
            raise ConfigError(f"split_fractions.{unknown[0]}: unknown split (known: {', '.join(SPLITS)})")
        try:
            fractions = {k: float(v) for k, v in self.split_fractions.items()}
        except (TypeError, ValueError):
            raise ConfigError("split_fractions: values must be numbers") from None
        if any(v < 0 for v in fractions.values()) or abs(sum(fractions.values()) - 1.0) > 1e-6:
            raise ConfigError(f"split_fractions: must be non-negative and sum to 1, got {fractions}")
        if fractions.get("train", 0.0) <= 0:
            raise ConfigError("split_fractions.train: must be above 0")
        self.split_fractions = {s: fractions.get(s, 0.0) for s in SPLITS}
        if not 0.0 <= self.max_corrupt_fraction <= 1.0:
            raise ConfigError("max_corrupt_fraction: must be between 0 and 1")
        if self.duplicates not in {"keep", "drop"}:
            raise ConfigError(f"duplicates: expected keep or drop, got {self.duplicates!r}")
        if self.content_class not in {"auto", "cifake", "none"}:
            raise ConfigError(f"content_class: expected auto, cifake or none, got {self.content_class!r}")
        if self.workers < 0:
            raise ConfigError("workers: must be 0 (all cores) or more")
        if self.max_pixels <= 0 or self.shard_max_bytes <= 0:
            raise ConfigError("max_pixels and shard_max_bytes: must be positive")


@functools.lru_cache(maxsize=4096)
def normalize_name(name: str) -> str:
    """Case- and separator-insensitive form of a class or split name: ``AI_Generated`` -> ``ai-generated``."""
    return "-".join(name.strip().lower().replace("_", " ").replace("-", " ").split())


def load_data_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> DataConfig:
    """``configs/data.yaml`` < ``AIDETECT_DATA__*`` env < ``overrides``."""
    return config.load(DataConfig, "data", path=path, overrides=overrides)


@dataclass
class ValidationConfig:
    """Bounds and policies of the validation suite (``configs/validation.yaml``)."""

    allowed_modes: list[str] = field(default_factory=lambda: ["RGB", "RGBA", "L", "P"])
    min_side: int = 16
    max_side: int = 8192
    min_class_share: float = 0.1
    max_class_share: float = 0.9
    balance_severity: str = WARNING
    duplicates: str = "warn"  # warn | fail | drop
    # all: decode every image; sample: decode ``decode_sample`` of them; auto: sample when ingest
    # already decoded every image (version.json ``verify_decode``), else all.
    decode_check: str = "auto"
    decode_sample: int = 2000
    decode_workers: int = 2
    required_splits: list[str] = field(default_factory=lambda: ["train", "val"])
    examples: int = 5
    # grown versions (provenance column): the share of reviewers' images above which the data is
    # mostly production's and no longer the base's (warning, then critical)
    feedback_share_warn: float = 0.5
    feedback_share_critical: float = 0.9

    def validate(self) -> None:
        if self.duplicates not in {"warn", "fail", "drop"}:
            raise ConfigError(f"duplicates: expected warn, fail or drop, got {self.duplicates!r}")
        if self.balance_severity not in {CRITICAL, WARNING}:
            raise ConfigError(
                f"balance_severity: expected critical or warning, got {self.balance_severity!r}"
            )
        if not 0 <= self.min_class_share <= self.max_class_share <= 1:
            raise ConfigError("min_class_share/max_class_share: need 0 <= min <= max <= 1")
        if not 0 < self.min_side <= self.max_side:
            raise ConfigError("min_side/max_side: need 0 < min_side <= max_side")
        bad = sorted(set(self.required_splits) - set(SPLITS))
        if bad:
            raise ConfigError(f"required_splits: unknown split {bad[0]!r}")
        if self.decode_check not in {"auto", "all", "sample"}:
            raise ConfigError(f"decode_check: expected auto, all or sample, got {self.decode_check!r}")
        if self.decode_sample < 1 or self.decode_workers < 1 or self.examples < 1:
            raise ConfigError("decode_sample, decode_workers and examples must be at least 1")
        if not 0 <= self.feedback_share_warn <= self.feedback_share_critical <= 1:
            raise ConfigError("feedback_share_warn/feedback_share_critical: need 0 <= warn <= critical <= 1")


def load_validation_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> ValidationConfig:
    """``configs/validation.yaml`` < ``AIDETECT_VALIDATION__*`` env < ``overrides``."""
    return config.load(ValidationConfig, "validation", path=path, overrides=overrides)
