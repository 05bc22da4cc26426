"""The reference profile stored with each registered model version (artifact path ``reference/``).

A profile is one parquet (``reference.parquet``) with the same columns the inference log writes, built
on a dataset version's validation split: the image features of :mod:`aidetect.data.features`, the
model's outputs (``label``, ``probability_fake``, ``p_<label>``) from the version's serving bundle, and
the ground truth as ``true_label``; plus ``profile.json`` describing how it was made. The drift check
compares logged windows against it, so the reference and the log share one feature function.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from aidetect import storage
from aidetect.data import crops
from aidetect.data.features import FEATURE_COLUMNS, image_features
from aidetect.data.imaging import ImageDecodeError, decode_rgb
from aidetect.decision import DecisionSpec
from aidetect.errors import DataError, ServiceUnavailableError, StorageError

ARTIFACT_PATH = "reference"
REFERENCE_FILE = "reference.parquet"
PROFILE_FILE = "profile.json"


class Scorer(Protocol):
    """Class probabilities for a batch of images (the served model, or a stand-in)."""

    labels: list[str]
    rule: DecisionSpec  # the decision rule the served model answers with

    def predict(self, encoded: Sequence[bytes]) -> np.ndarray:  # [N, C]
        ...


class BundleScorer:
    """The version's serving bundle (ONNX through onnxruntime), preprocessed exactly as served."""

    def __init__(self, bundle_uri: str, batch_size: int = 64) -> None:
        from aidetect.serving.bundle import load_bundle
        from aidetect.serving.classifier import OnnxClassifier

        bundle = load_bundle(bundle_uri)
        self.spec = bundle.spec
        self.labels = list(bundle.spec.labels)
        self.rule = DecisionSpec.from_meta(asdict(bundle.spec))
        self.batch_size = batch_size
        self._classify = OnnxClassifier(bundle)

    def predict(self, encoded: Sequence[bytes]) -> np.ndarray:
        s, pre = self.spec, self.spec.preprocess_spec
        out = []
        for i in range(0, len(encoded), self.batch_size):
            chunk = encoded[i : i + self.batch_size]
            per_image = [crops.inputs_from_bytes(b, pre, s.input_size, s.mean, s.std) for b in chunk]
            probs = self._classify(np.concatenate(per_image))
            if pre.crops:  # the crop rows of each image, aggregated as the server does
                owner = crops.owners([len(a) for a in per_image])
                probs = crops.aggregate(probs, owner, len(chunk), pre.aggregate, self.rule)
            out.append(probs)
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)


@dataclass
class Profile:
    """``profile.json``: what the reference was computed from."""

    model_name: str
    model_version: str
    dataset_version: str
    split: str
    rows: int
    feature_columns: list[str]
    prediction_columns: list[str]
    labels: list[str]
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    skipped: int = 0


def _prediction_columns(scores: np.ndarray, scorer: Scorer) -> dict[str, Any]:
    rule = scorer.rule
    cols: dict[str, Any] = {
        "label": rule.names(rule.decide(scores)),
        "probability_fake": rule.fake_score(scores),
    }
    for j, name in enumerate(rule.labels):
        cols[f"p_{name}"] = scores[:, j]
    return cols


def _sample(rows: pd.DataFrame, max_rows: int | None, seed: int) -> set[str] | None:
    if max_rows is None or len(rows) <= max_rows:
        return None
    return set(rows["sha256"].sample(n=max_rows, random_state=seed))


def profile_images(
    items: Iterator[tuple[dict[str, Any], bytes]], scorer: Scorer | None, batch: int = 256
) -> tuple[pd.DataFrame, int]:
    """Features (+ predictions) of ``(row, image_bytes)`` items; returns the frame and the skip count."""
    records: list[dict[str, Any]] = []
    frames: list[pd.DataFrame] = []
    encoded: list[bytes] = []
    skipped = 0

    def flush() -> None:
        if not records:
            return
        df = pd.DataFrame(records)
        if scorer is not None:
            for name, values in _prediction_columns(scorer.predict(encoded), scorer).items():
                df[name] = values
        frames.append(df)
        records.clear()
        encoded.clear()

    for row, data in items:
        try:
            img = decode_rgb(data)
        except ImageDecodeError:
            skipped += 1
            continue
        records.append(
            {"sha256": row.get("sha256", ""), "true_label": row.get("label", ""), **image_features(img, data)}
        )
        encoded.append(data)
        if len(records) >= batch:
            flush()
    flush()
    if not frames:
        raise DataError("no decodable images to build a reference profile from")
    return pd.concat(frames, ignore_index=True), skipped


def build_reference(
    dataset_version: str,
    *,
    model_name: str,
    model_version: str,
    scorer: Scorer | None,
    split: str = "val",
    max_rows: int | None = 5000,
    seed: int = 0,
    datasets_root: str | None = None,
) -> tuple[pd.DataFrame, Profile]:
    """Profile ``split`` of a dataset version (sampled down to ``max_rows``, deterministically)."""
    from aidetect.data.versions import open_version

    dv = open_version(dataset_version, root=datasets_root)
    rows = dv.rows(split)
    if rows.empty:
        raise DataError(f"dataset {dv.version_id} has no {split!r} rows to build a reference from")
    keep = _sample(rows, max_rows, seed)
    items = ((r, b) for r, b in dv.iter_images(split) if keep is None or r["sha256"] in keep)
    df, skipped = profile_images(items, scorer)
    prediction_columns = [c for c in df.columns if c == "probability_fake" or c.startswith("p_")]
    profile = Profile(
        model_name=model_name,
        model_version=str(model_version),
        dataset_version=dv.version_id,
        split=split,
        rows=len(df),
        feature_columns=list(FEATURE_COLUMNS),
        prediction_columns=prediction_columns,
        labels=list(scorer.labels) if scorer else list(dv.labels),
        skipped=skipped,
    )
    return df, profile


def _stage(df: pd.DataFrame, profile: Profile, folder: str) -> None:
    df.to_parquet(Path(folder) / REFERENCE_FILE, index=False)
    (Path(folder) / PROFILE_FILE).write_text(json.dumps(asdict(profile), indent=2))


def write_reference(df: pd.DataFrame, profile: Profile, out_dir: str) -> str:
    """Publish ``reference.parquet`` + ``profile.json`` to ``out_dir`` (local or s3://) atomically."""
    with tempfile.TemporaryDirectory(prefix="aidetect-reference-") as tmp:
        _stage(df, profile, tmp)
        storage.publish_dir(tmp, out_dir, marker=PROFILE_FILE)
    return out_dir


def log_reference(df: pd.DataFrame, profile: Profile) -> None:
    """Attach the profile to its registered model version under ``reference/``."""
    from aidetect import registry

    with tempfile.TemporaryDirectory(prefix="aidetect-reference-") as tmp:
        _stage(df, profile, tmp)
        registry.log_version_artifacts(profile.model_name, profile.model_version, tmp, ARTIFACT_PATH)


def read_reference(uri: str) -> tuple[pd.DataFrame, Profile]:
    """A profile from a folder / ``s3://`` prefix holding the two files (or the parquet itself)."""
    folder = uri[: -len(REFERENCE_FILE)].rstrip("/") if uri.endswith(REFERENCE_FILE) else uri
    parquet, meta = storage.join(folder, REFERENCE_FILE), storage.join(folder, PROFILE_FILE)
    if not storage.exists(parquet) or not storage.exists(meta):
        raise StorageError(f"no reference profile at {uri} (need {REFERENCE_FILE} and {PROFILE_FILE})")
    try:
        profile = Profile(**json.loads(storage.read_bytes(meta)))
    except (ValueError, TypeError) as exc:
        raise DataError(f"{meta} is not a valid profile: {exc}") from None
    return storage.read_parquet(parquet, "reference profile").to_pandas(), profile


def load_reference(model_name: str, version_or_alias: str) -> tuple[pd.DataFrame, Profile]:
    """The profile attached to a registered version (by number or alias)."""
    from aidetect import registry

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # keep stderr for the verdict
    info = registry.get_version(model_name, version_or_alias)
    with tempfile.TemporaryDirectory(prefix="aidetect-reference-") as tmp:
        try:
            got = registry.download_artifacts(model_name, info.version, ARTIFACT_PATH, tmp)
        except ServiceUnavailableError:
            raise
        except Exception as exc:  # a missing folder: the adapter's DataError, or MLflow's own types
            raise DataError(
                f"model {model_name} version {info.version} has no {ARTIFACT_PATH}/ profile ({exc})",
                hint=f"build one: aidetect drift reference --model {model_name}/{info.version}",
            ) from None
        folder = got if (Path(got) / PROFILE_FILE).exists() else Path(got) / ARTIFACT_PATH
        return read_reference(str(folder))


def profile_version(
    model_name: str,
    version_or_alias: str,
    *,
    dataset_version: str | None = None,
    split: str = "val",
    bundle_uri: str | None = None,
    predictions: bool = True,
    max_rows: int | None = 5000,
    datasets_root: str | None = None,
    out_dir: str | None = None,
    log_to_registry: bool = True,
) -> tuple[pd.DataFrame, Profile, list[str]]:
    """Build a registered version's profile and store it (registry ``reference/``, and/or ``out_dir``).

    The dataset defaults to the version's ``dataset_version`` tag and the predictions to its serving
    bundle (``models:/<name>/<version>``). Returns the frame, the profile and where it was stored.
    """
    version = str(version_or_alias)
    needs_registry = log_to_registry or not version.isdigit() or dataset_version is None
    if needs_registry or (predictions and bundle_uri is None):
        from aidetect import registry

        info = registry.get_version(model_name, version)
        version = info.version
        dataset_version = dataset_version or info.tags.get("dataset_version")
        if not dataset_version:
            raise DataError(
                f"model {model_name} version {version} has no dataset_version tag; pass --dataset"
            )
    assert dataset_version is not None
    scorer = BundleScorer(bundle_uri or f"models:/{model_name}/{version}") if predictions else None
    df, profile = build_reference(
        dataset_version,
        model_name=model_name,
        model_version=version,
        scorer=scorer,
        split=split,
        max_rows=max_rows,
        datasets_root=datasets_root,
    )
    where = []
    if out_dir:
        where.append(write_reference(df, profile, out_dir))
    if log_to_registry:
        log_reference(df, profile)
        where.append(f"models:/{model_name}/{version} ({ARTIFACT_PATH}/)")
    return df, profile, where
