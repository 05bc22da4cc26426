"""The text branches of the flows: the same steps over text dataset versions and text models.

``aidetect.flows`` dispatches here when the dataset version (``version.json`` ``modality``) or the model
folder (``meta.json`` ``modality``) is text, so the CLI, the demo, bench and the KFP components call one
step layer for both modalities.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from aidetect.flows.refs import BundleRef, DatasetRef, Evaluation, Registration, TrainedModel
from aidetect.flows.stores import Stores
from aidetect.model.lineage import read_json, write_json


@dataclass
class TextTrainResult:
    """What training a text model reports (the shape of the image ``TrainResult`` the callers use)."""

    meta: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        keys = ("arch", "dataset_version", "max_len", "num_train", "train_seconds", "val_auc", "modality")
        return {k: self.meta.get(k) for k in keys}

    def metrics(self) -> dict[str, float]:
        return {k: float(self.meta[k]) for k in ("val_auc", "train_seconds") if k in self.meta}


def is_text_dataset(dataset: DatasetRef) -> bool:
    """True for a text version; False too when it cannot be opened (the image path reports that)."""
    from aidetect.data.text.versions import is_text_version
    from aidetect.errors import AidetectError

    try:
        return is_text_version(dataset.open())
    except AidetectError:
        return False


def is_text_model(folder: str | Path) -> bool:
    """A training or evaluation folder of a text model (its ``meta.json`` says so)."""
    meta = Path(folder) / "meta.json"
    return meta.exists() and read_json(meta).get("modality") == "text"


def ingest(source: str, stores: Stores, cfg: Any = None) -> Any:
    from aidetect.data.text.settings import TextDataConfig, load_text_data_config
    from aidetect.data.text.versions import ingest_text

    return ingest_text(
        source,
        root=stores.datasets,
        config=cfg if isinstance(cfg, TextDataConfig) else load_text_data_config(),
    )


def validate(dataset: DatasetRef, stores: Stores, cfg: Any = None) -> Any:
    from aidetect.data.text.validation import TextValidationConfig, validate_text_version

    return validate_text_version(
        dataset.version_id, stores.datasets, cfg if isinstance(cfg, TextValidationConfig) else None
    )


def train(
    dataset: DatasetRef,
    out: str | Path,
    preset: str | None,
    config_path: str | None,
    overrides: dict[str, Any] | None,
) -> TextTrainResult:
    """``preset`` names the architecture (tfidf_lr, byte_cnn); overrides are TextTrainConfig fields."""
    from aidetect.model.text.config import ARCHS, TextTrainConfig, load_text_train_config
    from aidetect.model.text.train import train_text

    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    track = bool(given.pop("track", True))
    known = {f.name for f in fields(TextTrainConfig)}
    merged = {k: v for k, v in given.items() if k in known}
    if preset and preset in ARCHS:
        merged.setdefault("arch", preset)
    cfg = load_text_train_config(config_path, merged)
    folder = train_text(dataset.open(), out, cfg, track=track)
    return TextTrainResult(dict(read_json(folder / "meta.json")))


def evaluate(
    model: TrainedModel,
    stores: Stores,
    dataset: DatasetRef | None,
    out_dir: Path,
    gates: str | None,
    eval_overrides: dict[str, Any] | None,
) -> dict[str, Any]:
    from aidetect.data.text.versions import open_text_version
    from aidetect.model.text.config import load_text_eval_config, load_text_gates_config
    from aidetect.model.text.evaluate import evaluate_text

    meta = read_json(Path(model.dir) / "meta.json")
    version = dataset.open() if dataset else open_text_version(meta["dataset_version"], stores.datasets)
    return evaluate_text(
        model.dir,
        version,
        out_dir,
        eval_cfg=load_text_eval_config(overrides=eval_overrides),
        gates_cfg=load_text_gates_config(gates or None),
    )


def optimize(eval_dir: Path, stores: Stores, out: str | Path, dataset: DatasetRef | None) -> BundleRef:
    from aidetect.data.text.versions import open_text_version
    from aidetect.model.text.bundle import optimize_text

    meta = read_json(eval_dir / "meta.json")
    version = dataset.open() if dataset else open_text_version(meta["dataset_version"], stores.datasets)
    report = optimize_text(eval_dir, version, out)
    return BundleRef(str(Path(out).resolve()), report["chosen"], report)


def fingerprint(run: dict[str, Any], model: TrainedModel, gate_config: str | None) -> str:
    from aidetect.model.text.config import load_text_eval_config, load_text_gates_config

    inputs = {
        "dataset_version": run["dataset_version"],
        "train": model.train_config,
        "evaluate": asdict(load_text_eval_config()),
        "gates": asdict(load_text_gates_config(gate_config or None)),
        "code": str(run.get("git_commit", "unknown")),
        "modality": "text",
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:32]


def register(
    model: TrainedModel,
    stores: Stores,
    evaluation: Evaluation,
    bundle: BundleRef | None,
    bundle_dir: Path | None,
    alias: str | None,
    fp: str,
    existing: Registration | None,
    record: bool = True,
) -> Registration:
    from aidetect.data.text.versions import open_text_version
    from aidetect.model.text.bundle import register_text

    if existing is not None:
        return existing
    meta = read_json(Path(model.dir) / "meta.json")
    version = open_text_version(meta["dataset_version"], stores.datasets)
    source = Path(bundle.uri) if bundle is not None else bundle_dir
    if source is None:
        source = Path(optimize(Path(evaluation.dir), stores, Path(evaluation.dir) / "bundle", None).uri)
    info = register_text(
        model.dir,
        source,
        version,
        model_name=stores.name,
        alias=alias,
        extra_tags={"fingerprint": fp},
        eval_dir=evaluation.dir,
    )
    result = Registration(info.name, info.version, info.run_id, True, info.aliases, fp, info.tags)
    if record:
        write_json(Path(model.dir) / "registered.json", result.to_dict())
    return result
