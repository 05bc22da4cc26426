"""The serving bundle: ``model.onnx`` plus ``bundle.json`` (the settings the server needs).

A bundle is located by a local folder, an ``s3://`` prefix, or an MLflow model version
(``models:/<name>@<alias>`` or ``models:/<name>/<version>``, artifact path ``serving/``).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aidetect import storage
from aidetect.data.crops import PreprocessSpec
from aidetect.decision import DecisionSpec
from aidetect.errors import ConfigError, DataError, StorageError
from aidetect.refs import ModelRef

BUNDLE_FILE = "bundle.json"
ONNX_FILE = "model.onnx"
REGISTRY_ARTIFACT_PATH = "serving"


@dataclass
class BundleSpec:
    """The contents of ``bundle.json`` (see docs/CONTRACTS.md)."""

    model_name: str
    model_version: str
    labels: list[str]
    positive_label: str | None
    input_size: int
    mean: list[float]
    std: list[float]
    threshold: float
    input_name: str = "input"
    output_name: str = "logits"
    variant: str = "fp32"
    dataset_version: str = ""
    # the authentic label (DecisionSpec); bundles written before it existed get it from positive_label
    real_label: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # parity, timings, provenance
    # "image" or "text"; a text bundle reads UTF-8 texts encoded to ``max_len`` byte ids
    # (aidetect.data.text.encode) instead of images (input_size, mean and std are then unused)
    modality: str = "image"
    max_len: int = 0
    # how an image becomes model input (aidetect.data.crops.PreprocessSpec): resize (default, every
    # older bundle) or native-resolution crops aggregated into one score
    preprocess: dict[str, Any] = field(default_factory=lambda: {"mode": "resize"})

    @property
    def preprocess_spec(self) -> PreprocessSpec:
        return PreprocessSpec.from_meta({"preprocess": self.preprocess, "input_size": self.input_size})

    @property
    def decision(self) -> DecisionSpec:
        """The decision rule the bundle answers with (labels, real label, threshold)."""
        meta = {"labels": self.labels, "real_label": self.real_label, "positive_label": self.positive_label}
        return DecisionSpec.from_meta(meta, threshold=self.threshold)

    def validate(self) -> None:
        """Check the fields; fills ``real_label`` for bundles written before it existed."""
        if self.positive_label is not None and self.positive_label not in self.labels:
            raise DataError(f"{BUNDLE_FILE}: positive_label {self.positive_label!r} is not in {self.labels}")
        if self.modality not in ("image", "text"):
            raise DataError(f"{BUNDLE_FILE}: modality must be image or text, got {self.modality!r}")
        if self.modality == "text" and self.max_len < 1:
            raise DataError(f"{BUNDLE_FILE}: a text bundle needs max_len (bytes the model reads) >= 1")
        if self.modality == "image" and (self.input_size < 1 or len(self.mean) != 3 or len(self.std) != 3):
            raise DataError(f"{BUNDLE_FILE}: input_size, mean and std (3 values each) are required")
        try:
            self.preprocess_spec  # noqa: B018 - parsed to check it
        except (ConfigError, TypeError, ValueError) as exc:
            raise DataError(f"{BUNDLE_FILE}: {exc}") from None
        try:
            self.real_label = self.decision.real_label
        except DataError as exc:  # labels, real_label or threshold
            raise DataError(f"{BUNDLE_FILE}: {exc}") from None
        if self.positive_label == self.real_label:
            raise DataError(f"{BUNDLE_FILE}: positive_label {self.positive_label!r} is also the real_label")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str = BUNDLE_FILE) -> BundleSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not valid JSON ({exc})") from None
        known = set(cls.__dataclass_fields__)
        if isinstance(data, dict) and data.get("modality") == "text":
            data = {"input_size": 0, "mean": [], "std": [], **data}
        missing = {"model_name", "model_version", "labels", "input_size", "mean", "std"} - set(data)
        if missing:
            raise DataError(f"{where}: missing field(s) {', '.join(sorted(missing))}")
        extra = {k: v for k, v in data.items() if k not in known}
        spec = cls(**{k: v for k, v in data.items() if k in known})
        spec.extra = {**spec.extra, **extra}
        spec.model_version = str(spec.model_version)
        spec.threshold = float(spec.threshold if spec.threshold is not None else 0.5)
        spec.validate()
        return spec


@dataclass
class Bundle:
    """A bundle available on local disk."""

    root: Path
    spec: BundleSpec
    source: str

    @property
    def onnx_path(self) -> Path:
        return self.root / ONNX_FILE


def write_bundle(out_dir: str | Path, onnx_bytes: bytes, spec: BundleSpec) -> Path:
    """Write ``model.onnx`` and ``bundle.json`` into a new folder (published atomically)."""
    spec.validate()
    with tempfile.TemporaryDirectory(prefix="aidetect-bundle-") as tmp:
        staging = Path(tmp)
        (staging / ONNX_FILE).write_bytes(onnx_bytes)
        (staging / BUNDLE_FILE).write_text(spec.to_json())
        storage.publish_dir(staging, str(out_dir), marker=BUNDLE_FILE)
    return Path(out_dir)


def _download_dir() -> Path:
    """A fresh folder for a downloaded bundle, removed when the process exits."""
    dst = Path(tempfile.mkdtemp(prefix="aidetect-bundle-"))
    atexit.register(shutil.rmtree, dst, True)
    return dst


def _fetch(uri: str) -> Path:
    """A local folder holding the bundle at ``uri``."""
    if ModelRef.is_registry_uri(uri):
        from aidetect import registry

        model = ModelRef.parse(uri)  # DataError naming the accepted forms
        dst = _download_dir()
        registry.download_artifacts(model.name, model.ref, REGISTRY_ARTIFACT_PATH, str(dst))
        nested = dst / REGISTRY_ARTIFACT_PATH
        return nested if (nested / BUNDLE_FILE).exists() else dst
    if storage.is_s3(uri):
        if not storage.exists(storage.join(uri, BUNDLE_FILE)):
            raise StorageError(f"no {BUNDLE_FILE} under {uri}")
        return storage.download_dir(uri, _download_dir())
    root = Path(uri)
    if root.is_file() and root.name in (BUNDLE_FILE, ONNX_FILE):
        root = root.parent
    if not root.is_dir():
        raise StorageError(f"bundle not found: {uri}")
    return root


def load_bundle(uri: str | os.PathLike[str]) -> Bundle:
    """Locate and read the bundle at ``uri`` (folder, ``s3://`` prefix or ``models:/`` URI)."""
    uri = str(uri)
    root = _fetch(uri)
    meta, onnx = root / BUNDLE_FILE, root / ONNX_FILE
    if not meta.exists() or not onnx.exists():
        raise StorageError(f"{uri} is not a serving bundle: need {BUNDLE_FILE} and {ONNX_FILE}")
    return Bundle(
        root=root, spec=BundleSpec.from_json(meta.read_text(), where=f"{uri}/{BUNDLE_FILE}"), source=uri
    )
