"""Training and evaluation settings: one dataclass per concern, loaded from ``configs/``.

Training: ``configs/train.yaml`` < ``configs/presets/<name>.yaml`` < env ``AIDETECT_TRAIN__*`` < CLI flags.
Evaluation: ``configs/evaluate.yaml``. Every invalid value raises :class:`ConfigError` naming the field,
before any data is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aidetect import config
from aidetect.data.crops import PreprocessSpec
from aidetect.errors import ConfigError
from aidetect.model.networks import check_arch

THRESHOLD_POLICIES = ("max_f1", "target_recall", "fixed")


@dataclass
class AugmentConfig:
    """Augmentation on PIL images, before the shared preprocessing. Robustness transforms hit every class."""

    hflip: bool = True
    # vertical flips and quarter turns too (the 8 symmetries of the square): whether an image was
    # generated does not depend on its orientation
    dihedral: bool = False
    # random translation: reflect-pad by up to this many px, crop back to the original size; 0 = off
    translate_px: int = 0
    # random JPEG re-encode: probability and quality range
    jpeg_p: float = 0.3
    jpeg_quality: list[int] = field(default_factory=lambda: [50, 95])
    # Gaussian blur: probability and radius range (px)
    blur_p: float = 0.15
    blur_radius: list[float] = field(default_factory=lambda: [0.3, 1.2])
    # downscale then upscale back: probability and scale range
    rescale_p: float = 0.15
    rescale: list[float] = field(default_factory=lambda: [0.5, 0.9])
    # false: keep the rescaled size (crops models: an upload seen at another scale, e.g. [0.5, 1.5])
    rescale_back: bool = True
    # colour jitter: brightness, contrast and saturation each by a factor in [1 - jitter, 1 + jitter]
    jitter_p: float = 0.0
    jitter: float = 0.2
    # rotation by a uniform angle in [-rotate_degrees, rotate_degrees] (bilinear, corners mirrored in)
    rotate_p: float = 0.0
    rotate_degrees: float = 15.0
    # patch masking: blank square patches of mask_patch px covering up to mask_ratio of the image
    mask_p: float = 0.0
    mask_ratio: float = 0.2
    mask_patch: int = 16
    # the first clean_epochs epochs get only the lossless flips/turns: faint generation traces are learnt
    # on clean pixels first, then made robust (from scratch, JPEG/rescale/blur from the first step kept
    # a forensic network near chance for many epochs); 0 = every transform from the start
    clean_epochs: int = 0

    def validate(self) -> None:
        if self.clean_epochs < 0:
            raise ConfigError(f"augment.clean_epochs: must not be negative, got {self.clean_epochs}")
        for name in ("jpeg_p", "blur_p", "rescale_p", "jitter_p", "rotate_p", "mask_p", "mask_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"augment.{name}: must be between 0 and 1, got {getattr(self, name)}")
        if not 0 <= self.translate_px <= 64:
            raise ConfigError(f"augment.translate_px: must be between 0 and 64, got {self.translate_px}")
        if not 0.0 <= self.jitter < 1.0 or not 0.0 <= self.rotate_degrees <= 180.0 or self.mask_patch < 1:
            raise ConfigError("augment.jitter [0, 1), rotate_degrees [0, 180], mask_patch >= 1: out of range")
        ranges = {"jpeg_quality": (1, 100), "blur_radius": (0.0, 10.0), "rescale": (0.05, 2.0)}
        for name, (lo, hi) in ranges.items():
            r = getattr(self, name)
            if len(r) != 2 or not lo <= r[0] <= r[1] <= hi:
                raise ConfigError(f"augment.{name}: expected [low, high] within [{lo}, {hi}], got {r}")


@dataclass
class TrainConfig:
    """How a dataset version becomes a model checkpoint."""

    arch: str = "compact"
    input_size: int = 32
    weights: str = ""  # optional local / s3:// state dict to start from
    epochs: int = 20
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 0.5
    label_smoothing: float = 0.0
    early_stopping_patience: int = 5  # epochs without a better val F1; 0 disables
    seed: int = 0
    mean: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    std: list[float] = field(default_factory=lambda: [0.25, 0.25, 0.25])
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # how the model sees an image (aidetect.data.crops): resize (default) or native-resolution crops
    preprocess: PreprocessSpec = field(default_factory=PreprocessSpec)
    # the trained model averages each image with its mirror image wherever it predicts (validation,
    # evaluation, the exported ONNX graph): twice the inference cost
    flip_average: bool = False
    num_workers: int = 0
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # mixed precision: CUDA (bf16/fp16), or bf16 on a CPU that has it natively
    channels_last: bool = True  # memory layout on CUDA, and on the CPU together with bf16
    threads: int = 0  # torch CPU threads; 0 = torch default
    checkpoint_every_steps: int = 0  # also save resumable state inside an epoch; 0 = epoch ends only
    max_train_images: int = 0  # cap per epoch for smoke runs; 0 = all
    # a grown version (provenance column): each reviewer-labelled train image counts this many times per
    # epoch, and max_train_images never cuts them (a few hundred new images among 80k would not be learnt)
    feedback_repeat: int = 1
    # warm-started runs: weight of a loss that keeps the warm-start model's outputs on the base (not
    # reviewer-labelled) rows, so learning the new images does not unlearn the old (aidetect.model.retain)
    distill: float = 1.0
    distill_temperature: float = 2.0
    max_val_images: int = 0  # cap on the base val rows; a grown version's feedback val rows are all kept
    progress: bool = True
    track: bool = True  # log to MLflow
    experiment: str = "aidetect"

    def validate(self) -> None:
        check_arch(self.arch)
        positive = {"input_size": self.input_size, "epochs": self.epochs, "batch_size": self.batch_size}
        for name, value in positive.items():
            if value <= 0:
                raise ConfigError(f"{name}: must be positive, got {value}")
        if not self.lr > 0:
            raise ConfigError(f"lr: must be positive, got {self.lr}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay: must not be negative, got {self.weight_decay}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing: must be in [0, 1), got {self.label_smoothing}")
        if self.feedback_repeat < 1:
            raise ConfigError(f"feedback_repeat: must be >= 1, got {self.feedback_repeat}")
        if self.distill < 0 or not self.distill_temperature > 0:
            raise ConfigError(
                f"distill must not be negative ({self.distill}) and distill_temperature must be positive "
                f"({self.distill_temperature})"
            )
        if self.augment.clean_epochs >= self.epochs:
            msg = f"augment.clean_epochs ({self.augment.clean_epochs}) must be below epochs ({self.epochs})"
            raise ConfigError(msg)
        if self.warmup_epochs < 0 or self.early_stopping_patience < 0:
            raise ConfigError("warmup_epochs and early_stopping_patience: must not be negative")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s <= 0 for s in self.std):
            raise ConfigError("mean/std: need three values each, std positive")
        self.preprocess.resolved(self.input_size)  # a crop must equal the network input
        if self.device not in {"auto", "cpu", "cuda"}:
            raise ConfigError(f"device: expected auto, cpu or cuda, got {self.device!r}")
        for name in (
            "num_workers",
            "threads",
            "checkpoint_every_steps",
            "max_train_images",
            "max_val_images",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must not be negative")


@dataclass
class EvalConfig:
    """How a checkpoint is evaluated and its decision threshold chosen."""

    split: str = "test"  # evaluation split; falls back to val when the version has no test rows
    threshold_split: str = "val"
    threshold_policy: str = "max_f1"  # max_f1 | target_recall | fixed
    target_recall: float = 0.95  # FAKE recall to reach with target_recall
    fixed_threshold: float = 0.5
    ece_bins: int = 15
    batch_size: int = 256
    max_images: int = 0  # cap for smoke runs; 0 = all

    def validate(self) -> None:
        if self.threshold_policy not in THRESHOLD_POLICIES:
            known = ", ".join(THRESHOLD_POLICIES)
            raise ConfigError(f"threshold_policy: unknown {self.threshold_policy!r} (known: {known})")
        if not 0.0 < self.target_recall <= 1.0:
            raise ConfigError(f"target_recall: must be in (0, 1], got {self.target_recall}")
        if not 0.0 < self.fixed_threshold < 1.0:
            raise ConfigError(f"fixed_threshold: must be in (0, 1), got {self.fixed_threshold}")
        for name in ("split", "threshold_split"):
            if getattr(self, name) not in ("train", "val", "test"):
                raise ConfigError(f"{name}: expected train, val or test")
        if self.ece_bins < 2 or self.batch_size <= 0 or self.max_images < 0:
            raise ConfigError("ece_bins (>= 2), batch_size (> 0), max_images (>= 0): out of range")


def presets_dir() -> Path:
    return config.config_dir() / "presets"


def available_presets() -> list[str]:
    return sorted(p.stem for p in presets_dir().glob("*.yaml"))


def load_train_config(
    preset: str | None = None, path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> TrainConfig:
    """``train.yaml`` (or ``path``) < preset < env < ``overrides``, validated."""
    layers: list[Path] = []
    if preset:
        preset_file = Path(preset) if preset.endswith((".yaml", ".yml")) else presets_dir() / f"{preset}.yaml"
        if not preset_file.exists():
            known = ", ".join(available_presets()) or "none"
            raise ConfigError(f"preset: unknown {preset!r} (known: {known})")
        layers.append(preset_file)
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    return config.load(TrainConfig, "train", path=path, overrides=given, layers=layers)


def load_eval_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> EvalConfig:
    return config.load(EvalConfig, "evaluate", path=path, overrides=overrides)


# -- gates (``configs/gates.yaml``) and slices (``configs/slices.yaml``) ------------------------------

# slice family -> manifest column (``source`` is the dataset's origin: coco, diffusiondb, ...)
GROUP_COLUMNS = {
    "content_class": "content_class",
    "source": "origin",
    "resolution": None,
    "provenance": "provenance",  # grown versions: base | feedback (aidetect.feedback.grow)
}
# robustness slices: each name is an image transformation in :data:`aidetect.model.slices.PERTURBATIONS`
# (``upload_1080_q85``: longest side down to 1080 px when longer, then JPEG q85, as upload sites do)
PERTURBATION_NAMES = ("jpeg_q50", "jpeg_q75", "downscale_x2", "blur", "upload_1080_q85")

METRICS = (
    "accuracy",
    "f1",
    "macro_f1",
    "fake_recall",
    "fake_precision",
    "fake_f1",
    "roc_auc",
    "pr_auc",
    "ece",
)
_PER_LABEL = re.compile(r"^(precision|recall|f1)\.(.+)$")
LOWER_IS_BETTER = {"ece"}


def check_metric_name(name: str, field_name: str, labels: list[str] | None = None) -> None:
    m = _PER_LABEL.match(name)
    if m:
        if labels is not None and m.group(2) not in labels:
            raise ConfigError(f"{field_name}: metric {name!r} names label {m.group(2)!r}, not in {labels}")
        return
    if name not in METRICS:
        known = ", ".join(METRICS) + ", precision.<label>, recall.<label>, f1.<label>"
        raise ConfigError(f"{field_name}: unknown metric {name!r} (known: {known})")


@dataclass
class SliceGate:
    metric: str = "accuracy"
    min: float = 0.0  # every group with at least min_count images
    max_gap: float = 1.0  # best group minus worst group, per family
    min_count: int = 30
    families: list[str] = field(default_factory=lambda: ["content_class", "source", "resolution"])


@dataclass
class PerturbationGate:
    metric: str = "accuracy"
    min: float = 0.0
    max_drop: float = 1.0  # clean metric minus perturbed metric


@dataclass
class RegressionGate:
    enabled: bool = True
    alias: str = "production"
    metrics: list[str] = field(default_factory=lambda: ["f1", "roc_auc"])
    tolerance: float = 0.005  # allowed drop against the champion


@dataclass
class FeedbackGate:
    """A grown version's evaluation split holds base and reviewer-labelled (feedback) images: the
    challenger must not do worse than the champion on either part (forgetting the old, not learning the
    new) and must reach ``min`` on the feedback part."""

    enabled: bool = True
    metric: str = "accuracy"
    min: float = 0.8  # floor on the feedback slice
    tolerance: float = 0.01  # allowed drop against the champion, on the base and the feedback slice
    min_count: int = 10  # fewer feedback images in the evaluation split: skipped (noted)


@dataclass
class GatesConfig:
    """``configs/gates.yaml``."""

    min: dict[str, float] = field(default_factory=lambda: {"accuracy": 0.9, "f1": 0.9, "roc_auc": 0.95})
    max: dict[str, float] = field(default_factory=lambda: {"ece": 0.05})
    slices: SliceGate = field(default_factory=SliceGate)
    perturbations: PerturbationGate = field(default_factory=PerturbationGate)
    regression: RegressionGate = field(default_factory=RegressionGate)
    feedback: FeedbackGate = field(default_factory=FeedbackGate)

    def validate(self) -> None:
        for kind in ("min", "max"):
            for name, value in getattr(self, kind).items():
                check_metric_name(name, f"{kind}.{name}")
                try:
                    float(value)
                except (TypeError, ValueError):
                    raise ConfigError(f"{kind}.{name}: expected a number, got {value!r}") from None
        check_metric_name(self.slices.metric, "slices.metric")
        check_metric_name(self.perturbations.metric, "perturbations.metric")
        check_metric_name(self.feedback.metric, "feedback.metric")
        if self.feedback.tolerance < 0 or self.feedback.min_count < 1:
            raise ConfigError("feedback.tolerance (>= 0) / feedback.min_count (>= 1): out of range")
        for i, m in enumerate(self.regression.metrics):
            check_metric_name(m, f"regression.metrics[{i}]")
        for i, fam in enumerate(self.slices.families):
            if fam not in GROUP_COLUMNS:
                raise ConfigError(
                    f"slices.families[{i}]: unknown slice {fam!r} (known: {', '.join(GROUP_COLUMNS)})"
                )
        if self.slices.min_count < 1 or self.regression.tolerance < 0:
            raise ConfigError("slices.min_count (>= 1) / regression.tolerance (>= 0): out of range")

    def check_labels(self, labels: list[str]) -> None:
        """Per-label metrics must name labels of the model being gated."""
        for kind in ("min", "max"):
            for name in getattr(self, kind):
                check_metric_name(name, f"{kind}.{name}", labels)


def load_gates_config(path: str | None = None) -> GatesConfig:
    return config.load(GatesConfig, "gates", path=path)


@dataclass
class SlicesConfig:
    """Which slices the evaluation reports (``configs/slices.yaml``)."""

    groups: list[str] = field(default_factory=lambda: ["content_class", "source", "resolution", "provenance"])
    perturbations: list[str] = field(default_factory=lambda: list(PERTURBATION_NAMES))
    # resolution buckets by the shorter side in px: upper bounds, the last bucket is open-ended
    resolution_edges: list[int] = field(default_factory=lambda: [64, 256, 1024])

    def validate(self) -> None:
        for i, g in enumerate(self.groups):
            if g not in GROUP_COLUMNS:
                raise ConfigError(f"groups[{i}]: unknown slice {g!r} (known: {', '.join(GROUP_COLUMNS)})")
        for i, p in enumerate(self.perturbations):
            if p not in PERTURBATION_NAMES:
                raise ConfigError(
                    f"perturbations[{i}]: unknown slice {p!r} (known: {', '.join(PERTURBATION_NAMES)})"
                )
        if any(b <= a for a, b in zip(self.resolution_edges, self.resolution_edges[1:], strict=False)):
            raise ConfigError("resolution_edges: must be increasing")


def load_slices_config(path: str | None = None) -> SlicesConfig:
    return config.load(SlicesConfig, "slices", path=path)
