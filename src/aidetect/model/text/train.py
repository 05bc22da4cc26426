"""Train a text model on a text dataset version; the folder holds the ONNX graph both modalities serve.

Output (published in one rename, never half-written): ``model.onnx``, ``meta.json`` (arch, labels,
real label, ``max_len``, dataset version, parity), ``history.json``, ``config.json`` and ``run.json``
(the tracked MLflow run). The ONNX graph is checked against the training framework before publishing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from aidetect import registry
from aidetect.data.text.encode import INPUT_NAME, OUTPUT_NAME
from aidetect.data.text.versions import is_text_version, read_texts
from aidetect.data.versions import DatasetVersion
from aidetect.decision import DecisionSpec
from aidetect.errors import DataError
from aidetect.model.evaluate import _publishing
from aidetect.model.lineage import git_commit, write_json
from aidetect.model.text import runtime
from aidetect.model.text.config import TextTrainConfig

log = logging.getLogger(__name__)


def load_text_split(version: DatasetVersion, split: str, limit: int = 0) -> tuple[list[str], np.ndarray, Any]:
    """``(texts, class indices, manifest rows)`` of ``split`` (the first ``limit`` rows when set)."""
    if not is_text_version(version):
        raise DataError(f"dataset version {version.version_id} holds images, not texts")
    rows = version.rows(split)
    texts = read_texts(version, split)
    if limit:
        rows, texts = rows.head(limit), texts[:limit]
    targets = np.array([version.labels.index(x) for x in rows["label"]], dtype=np.int64)
    return texts, targets, rows


def _auc(probs: np.ndarray, targets: np.ndarray, spec: DecisionSpec) -> float:
    from sklearn.metrics import roc_auc_score

    is_fake = spec.is_fake(targets)
    if is_fake.all() or not is_fake.any():
        return float("nan")
    return float(roc_auc_score(is_fake, spec.fake_score(probs)))


def _fit(
    cfg: TextTrainConfig,
    texts: list[str],
    y: np.ndarray,
    val: list[str],
    vy: np.ndarray,
    spec: DecisionSpec,
    stage: Path,
):
    """Fit ``cfg.arch``, write ``model.onnx`` into ``stage``; (reference probabilities on val, history)."""
    k = len(spec.labels)
    if cfg.arch == "tfidf_lr":
        from aidetect.model.text import tfidf

        fitted = tfidf.fit(texts, y, cfg.tfidf)
        (stage / "model.onnx").write_bytes(tfidf.to_onnx(fitted, k).SerializeToString())
        ref = tfidf.predict_sklearn(fitted, val, k)
        features = len(fitted.vocabulary()[0])
        return ref, [{"epoch": 1, "features": features, "val_auc": _auc(ref, vy, spec)}]
    from aidetect.model.text import cnn

    model, history = cnn.train_cnn(texts, y, val, vy, lambda p, t: _auc(p, t, spec), cfg.cnn, k)
    cnn.export_cnn(model, stage / "model.onnx")
    return cnn.predict_torch(model, val, cfg.cnn.max_len), history


def train_text(version: DatasetVersion, out: str | Path, cfg: TextTrainConfig, *, track: bool = True) -> Path:
    """Train ``cfg.arch`` on the version's train split (model selection on val) into ``out``."""
    started = time.perf_counter()
    spec = DecisionSpec.from_meta(version.meta)
    texts, y, _ = load_text_split(version, "train")
    val, vy, _ = load_text_split(version, "val")
    if len(texts) == 0 or len(set(y.tolist())) < 2:
        raise DataError(f"dataset version {version.version_id}: the train split needs texts of every class")
    out = Path(out)
    with _publishing(out) as stage:
        ref, history = _fit(cfg, texts, y, val, vy, spec, stage)
        got = runtime.probabilities(runtime.session(stage / "model.onnx"), val, cfg.max_len)
        parity = float(np.abs(got - ref).max()) if len(val) else 0.0
        if parity > cfg.parity_tolerance:
            raise DataError(
                f"{cfg.arch}: the ONNX graph differs from the trained model by {parity:.2e} "
                f"(> parity_tolerance {cfg.parity_tolerance})"
            )
        seconds = time.perf_counter() - started
        meta = {
            "modality": "text",
            "arch": cfg.arch,
            **spec.to_meta(),
            "num_classes": len(spec.labels),
            "max_len": cfg.max_len,
            "input_name": INPUT_NAME,
            "output_name": OUTPUT_NAME,
            "dataset_version": version.version_id,
            "onnx_parity_max_diff": parity,
            "val_auc": _auc(got, vy, spec) if len(val) else float("nan"),
            "train_seconds": round(seconds, 1),
            "num_train": len(texts),
        }
        write_json(stage / "meta.json", meta)
        write_json(stage / "history.json", {"history": history})
        write_json(stage / "config.json", {"train": asdict(cfg)})
        run_id = ""
        if track:
            tags = {
                "dataset_version": version.version_id,
                "git_commit": git_commit(),
                "modality": "text",
                "arch": cfg.arch,
            }
            run_id = registry.start_run(cfg.experiment, run_name=f"text-{cfg.arch}", tags=tags)
            registry.log_params(
                run_id, {"arch": cfg.arch, **asdict(cfg.tfidf if cfg.arch == "tfidf_lr" else cfg.cnn)}
            )
            registry.log_metrics(run_id, {"val_auc": meta["val_auc"], "train_seconds": seconds})
            registry.end_run(run_id)
        write_json(
            stage / "run.json",
            {
                "run_id": run_id,
                "dataset_version": version.version_id,
                "git_commit": git_commit(),
                "finished": True,
                "best_epoch": len(history),
            },
        )
    log.info(
        "trained %s on %s in %.1fs (val AUC %.4f)", cfg.arch, version.version_id, seconds, meta["val_auc"]
    )
    return out
