"""Model flows: train -> evaluate (and gate) -> optimize -> register, over typed references.

``register`` is the one place a version comes into being: it logs the checkpoint, reports, plots and
model card to the training run, creates the version, attaches the serving bundle stamped with the final
name and version (``serving/``) and the drift reference profile (``reference/``), and only then points
the alias at it. Anything failing on the way deletes the version again: all or nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from aidetect.errors import AidetectError, DataError, GateFailedError
from aidetect.flows.refs import EVAL_DIR, BundleRef, DatasetRef, Evaluation, Registration, TrainedModel
from aidetect.flows.stores import Stores
from aidetect.model.lineage import read_json, write_json

FINGERPRINT_TAG = "fingerprint"
OPTIMIZED_FILE = "optimized.json"  # in a training folder: where `aidetect optimize` wrote its bundle
REGISTERED_FILE = "registered.json"
EVAL_METRICS = ("accuracy", "f1", "macro_f1", "fake_recall", "roc_auc", "pr_auc", "ece", "threshold")


def gate_failed(evaluation: Evaluation) -> GateFailedError:
    reasons = "; ".join(evaluation.failures[:5]) or "see gate_report.md"
    return GateFailedError(f"quality gates failed, not registered: {reasons}")


# -- train -------------------------------------------------------------------------------------------


def train(
    dataset: DatasetRef,
    stores: Stores,
    out: str | Path,
    *,
    preset: str | None = None,
    config_path: str | None = None,
    overrides: dict[str, Any] | None = None,
    resume: bool = False,
    init_from: Any = None,
    from_scratch: bool = False,
) -> tuple[TrainedModel, Any]:
    """Train from ``preset`` (merged over ``configs/train.yaml``) into ``out``; returns the folder and
    the :class:`aidetect.model.train.TrainResult`.

    ``init_from`` (a ``ModelRef``, ``models:/...`` or a checkpoint path; the champion when retraining):
    warm-start from its weights when the network matches, else from scratch with a warning in the log;
    ``from_scratch`` ignores it."""
    from aidetect.model.config import load_train_config
    from aidetect.model.train import train as train_model

    stores.activate()
    from aidetect.flows import text

    if text.is_text_dataset(dataset):
        return TrainedModel(str(out)), text.train(dataset, out, preset, config_path, overrides)
    cfg = load_train_config(preset or None, config_path, overrides)
    with tempfile.TemporaryDirectory(prefix="aidetect-init-") as tmp:
        start = None if from_scratch or not init_from else _init_checkpoint(init_from, stores, Path(tmp))
        result = train_model(cfg, dataset.open(), out, resume=resume, init_from=start)
    return TrainedModel(str(out)), result


def _init_checkpoint(init_from: Any, stores: Stores, tmp: Path) -> str:
    """A local checkpoint for ``init_from``: a registered version's ``checkpoint/model.pt``, or a path."""
    from aidetect import registry
    from aidetect.refs import ModelRef

    text_ref = str(init_from)
    if isinstance(init_from, ModelRef) or ModelRef.is_registry_uri(text_ref):
        ref = init_from if isinstance(init_from, ModelRef) else ModelRef.parse(text_ref, stores.name)
        return str(registry.download_artifacts(ref.name, ref.ref, "checkpoint/model.pt", tmp))
    path = Path(text_ref)
    if path.is_dir():
        path = path / "model.pt"
    if not path.exists():
        raise DataError(f"--init-from {text_ref}: no checkpoint there (a models:/ URI or a model.pt)")
    return str(path)


# -- evaluate ----------------------------------------------------------------------------------------


def _champion(gates_cfg: Any, model_name: str, tmp: Path, given: Any = None) -> tuple[str, str] | None:
    """``(version, checkpoint)`` of the model to compare with: ``given`` (a ``ModelRef`` or
    ``models:/...``), else the holder of ``regression.alias``; None without one."""
    from aidetect import registry
    from aidetect.refs import ModelRef

    if not (gates_cfg.regression.enabled or gates_cfg.feedback.enabled):
        return None
    if given:
        ref = given if isinstance(given, ModelRef) else ModelRef.parse(str(given), model_name)
        model_name, version = ref.name, registry.get_version(ref.name, ref.ref).version
    else:
        version = registry.resolve_alias(model_name, gates_cfg.regression.alias)
    if version is None:
        return None
    path = registry.download_artifacts(model_name, version, "checkpoint/model.pt", tmp)
    return version, str(path)


def evaluate(
    model: TrainedModel,
    stores: Stores,
    *,
    dataset: DatasetRef | None = None,
    out: str | Path | None = None,
    gates: str | None = None,
    slices: str | None = None,
    eval_overrides: dict[str, Any] | None = None,
    champion: Any = None,
) -> Evaluation:
    """Threshold on val, metrics, slices, perturbations, champion comparison and the gate rules.

    ``champion`` (a ``ModelRef`` or ``models:/...``): the model compared with; default the holder of
    the gates' ``regression.alias``.

    Writes the evaluation folder (default ``<model>/eval``) and, for a tracked run, logs the metrics and
    reports to it. The verdict is in the returned :class:`Evaluation`; raising on failure is the caller's
    choice (``register`` refuses failed evaluations)."""
    from aidetect.data.versions import open_version
    from aidetect.model.checkpoint import read_checkpoint
    from aidetect.model.config import load_eval_config, load_gates_config, load_slices_config
    from aidetect.model.evaluate import evaluate as run_evaluation

    stores.activate()
    from aidetect.flows import text

    out_dir = Path(out) if out else Path(model.dir) / EVAL_DIR
    if out_dir.resolve() == Path(model.dir).resolve():
        raise AidetectError(
            "--out must not be the model folder itself (use a subfolder, default <model>/eval)"
        )
    if text.is_text_model(model.dir):
        report = text.evaluate(model, stores, dataset, out_dir, gates, eval_overrides)
        _log_evaluation(model, out_dir, report, report["dataset_version"])
        return Evaluation.load(out_dir)
    eval_cfg = load_eval_config(overrides=eval_overrides)
    gates_cfg = load_gates_config(gates)
    slices_cfg = load_slices_config(slices)
    model_file = model.checkpoint
    meta = read_checkpoint(str(model_file))["meta"]
    version = dataset.open() if dataset else open_version(meta.get("dataset_version", ""), stores.datasets)
    with tempfile.TemporaryDirectory(prefix="aidetect-champion-") as tmp:
        report = run_evaluation(
            str(model_file),
            version,
            out_dir,
            eval_cfg=eval_cfg,
            slices_cfg=slices_cfg,
            gates_cfg=gates_cfg,
            champion=_champion(gates_cfg, stores.name, Path(tmp), champion),
        )
    _log_evaluation(model, out_dir, report, version.version_id)
    return Evaluation.load(out_dir)


def _log_evaluation(model: TrainedModel, out_dir: Path, report: dict[str, Any], dataset_version: str) -> None:
    """Metrics, gate status and reports into the training run (when it was tracked)."""
    from aidetect import registry

    run_file = Path(model.dir) / "run.json"
    run_id = read_json(run_file).get("run_id") if run_file.exists() else None
    if run_id:
        registry.log_metrics(run_id, {f"eval_{k}": report["metrics"][k] for k in EVAL_METRICS})
        registry.set_run_tags(
            run_id, {"gate_status": report["gate_status"], "eval_dataset_version": dataset_version}
        )
        for f in ("gate_report.json", "gate_report.md", "metrics.json"):
            registry.log_artifacts(run_id, out_dir / f, "reports")
        registry.log_artifacts(run_id, out_dir / "plots", "plots")


# -- optimize ----------------------------------------------------------------------------------------


def optimize(
    model: TrainedModel | Evaluation | str,
    stores: Stores,
    out: str | Path,
    *,
    dataset: DatasetRef | None = None,
    variants: tuple[str, ...] | None = None,
    max_accuracy_drop: float = 0.3,
    max_validation: int = 2000,
    name: str | None = None,
    version: str | None = None,
    attach: bool = True,
) -> BundleRef:
    """Export ONNX variants, check parity and speed, write the fastest passing one's bundle to ``out``.

    A training folder is optimized from its evaluated checkpoint (the one that carries the threshold),
    and the folder remembers the bundle so ``register`` attaches exactly it. A registered version
    (``models:/...``) gets the bundle attached as its ``serving/`` unless ``attach`` is false."""
    from aidetect.model.optimize import VARIANTS
    from aidetect.model.optimize import optimize as build_bundle

    stores.activate()
    from aidetect.flows import text

    folder = model.dir if isinstance(model, (Evaluation, TrainedModel)) else model
    if text.is_text_model(folder):
        eval_dir = Path(folder) if isinstance(model, Evaluation) else Path(folder) / EVAL_DIR
        ref = text.optimize(eval_dir, stores, out, dataset)
        if (Path(folder) / "run.json").exists():
            write_json(Path(folder) / OPTIMIZED_FILE, {"bundle": ref.uri, "variant": ref.variant})
        return ref
    if isinstance(model, Evaluation):
        source = str(model.checkpoint)
    elif isinstance(model, TrainedModel):
        source = model.dir
    else:
        source = model
    report = build_bundle(
        source,
        dataset.open() if dataset else None,
        str(out),
        model_name=name,
        model_version=version,
        variants=variants or VARIANTS,
        max_accuracy_drop=max_accuracy_drop,
        max_validation=max_validation,
        datasets_root=stores.datasets,
        register=attach,
    )
    ref = BundleRef(str(Path(out).resolve()), report.chosen, report.to_dict())
    if isinstance(model, TrainedModel) or (isinstance(model, str) and Path(model).is_dir()):
        folder = Path(model.dir if isinstance(model, TrainedModel) else model)
        if (folder / "run.json").exists():
            write_json(folder / OPTIMIZED_FILE, {"bundle": ref.uri, "variant": ref.variant})
    return ref


# -- register ----------------------------------------------------------------------------------------


def fingerprint(dataset_version: str, model: TrainedModel, gate_config: str | None, code: str) -> str:
    """A digest of everything that decides a registered model: the dataset version, the resolved training
    config, the evaluation, slice and gate rules, and the code version."""
    from aidetect.model.config import load_eval_config, load_gates_config, load_slices_config

    inputs = {
        "dataset_version": dataset_version,
        "train": model.train_config,
        "evaluate": asdict(load_eval_config()),
        "slices": asdict(load_slices_config()),
        "gates": asdict(load_gates_config(gate_config or None)),
        "code": code,
    }
    blob = json.dumps(inputs, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def _existing(name: str, fp: str) -> Registration | None:
    from aidetect import registry

    for info in registry.list_versions(name):
        if info.tags.get(FINGERPRINT_TAG) == fp:
            return Registration(info.name, info.version, info.run_id, False, info.aliases, fp, info.tags)
    return None


def _log_run_artifacts(model: TrainedModel, evaluation: Evaluation, run: dict[str, Any]) -> str:
    """Checkpoint, reports, plots and model card into the training run; returns the model card."""
    from aidetect import registry
    from aidetect.model.report import model_card

    ev_dir = Path(evaluation.dir)
    card = model_card(evaluation.report, run, model.train_config)
    with tempfile.TemporaryDirectory(prefix="aidetect-register-") as tmp:
        stage = Path(tmp)
        (stage / "checkpoint").mkdir()
        shutil.copy2(evaluation.checkpoint, stage / "checkpoint" / "model.pt")
        (stage / "reports").mkdir()
        for f in ("gate_report.json", "gate_report.md", "metrics.json"):
            shutil.copy2(ev_dir / f, stage / "reports" / f)
        shutil.copytree(ev_dir / "plots", stage / "plots")
        if (Path(model.dir) / "plots").is_dir():
            shutil.copytree(Path(model.dir) / "plots", stage / "plots", dirs_exist_ok=True)
        (stage / "model_card.md").write_text(card)
        for part in ("checkpoint", "reports", "plots"):
            registry.log_artifacts(run["run_id"], stage / part, part)
        registry.log_artifacts(run["run_id"], stage / "model_card.md", None)
    return card


def _bundle_source(
    model: TrainedModel, evaluation: Evaluation, bundle: BundleRef | None, stores: Stores, tmp: Path
) -> Path:
    """The bundle to attach: the one given, the one ``optimize`` wrote for this folder, or a fresh one."""
    if bundle is not None:
        return Path(bundle.uri)
    pointer = Path(model.dir) / OPTIMIZED_FILE
    if pointer.exists():
        recorded = Path(read_json(pointer)["bundle"])
        if (recorded / "bundle.json").exists():
            return recorded
    return Path(optimize(evaluation, stores, tmp / "built").uri)


def _attach_bundle(source: Path, name: str, version: str, tmp: Path) -> Path:
    """Copy the bundle with the registered name and version in ``bundle.json`` and log it to ``serving/``."""
    from aidetect import registry
    from aidetect.serving.bundle import BUNDLE_FILE, REGISTRY_ARTIFACT_PATH

    staged = tmp / "serving"
    shutil.copytree(source, staged)
    spec = read_json(staged / BUNDLE_FILE)
    spec.update(model_name=name, model_version=str(version))
    write_json(staged / BUNDLE_FILE, spec)
    registry.log_version_artifacts(name, version, staged, REGISTRY_ARTIFACT_PATH)
    return staged


def register(
    model: TrainedModel,
    stores: Stores,
    *,
    evaluation: Evaluation | None = None,
    bundle: BundleRef | None = None,
    alias: str | None = "candidate",
    gate_config: str | None = None,
    idempotent: bool = False,
    record: bool = True,
) -> Registration:
    """Register an evaluated, gate-passing model with its serving bundle and reference profile.

    ``idempotent``: a version whose ``fingerprint`` tag matches these inputs is returned, not duplicated.
    ``record``: write ``registered.json`` into the training folder."""
    from aidetect import registry
    from aidetect.monitoring.reference import profile_version

    evaluation = evaluation or Evaluation.load(Path(model.dir) / EVAL_DIR)
    if not evaluation.passed:
        raise gate_failed(evaluation)
    run = model.run
    if not run.get("run_id"):
        raise DataError(
            f"the training run in {model.dir} was not tracked (track: false), so it cannot be registered"
        )
    stores.activate()
    name = stores.name
    from aidetect.flows import text

    if text.is_text_model(model.dir):
        fp = text.fingerprint(run, model, gate_config)
        found = _existing(name, fp) if idempotent else None
        pointer = Path(model.dir) / OPTIMIZED_FILE
        recorded = Path(read_json(pointer)["bundle"]) if pointer.exists() else None
        return text.register(model, stores, evaluation, bundle, recorded, alias, fp, found, record)
    fp = fingerprint(run["dataset_version"], model, gate_config, str(run.get("git_commit", "unknown")))
    if idempotent and (found := _existing(name, fp)) is not None:
        return found
    registry.check_reachable()
    card = _log_run_artifacts(model, evaluation, run)
    tags = {
        "dataset_version": run["dataset_version"],
        "eval_dataset_version": evaluation.dataset_version,
        "git_commit": run.get("git_commit", "unknown"),
        "gate_status": "passed",
        "threshold": f"{evaluation.threshold:.6f}",
        "arch": evaluation.report["model"]["arch"],
        FINGERPRINT_TAG: fp,
    }
    info = registry.register_version(run["run_id"], name, tags=tags, description=card[:4000], alias=None)
    try:
        with tempfile.TemporaryDirectory(prefix="aidetect-attach-") as tmp:
            source = _bundle_source(model, evaluation, bundle, stores, Path(tmp))
            staged = _attach_bundle(source, name, info.version, Path(tmp))
            profile_version(
                name,
                info.version,
                dataset_version=evaluation.dataset_version,
                split="val",
                bundle_uri=str(staged),
                datasets_root=stores.datasets,
                log_to_registry=True,
            )
        if alias:
            registry.set_alias(name, alias, info.version)
    except BaseException:
        with contextlib.suppress(Exception):
            registry.delete_version(name, info.version)
        raise
    info = registry.get_version(name, info.version)
    result = Registration(info.name, info.version, info.run_id, True, info.aliases, fp, info.tags)
    if record:
        write_json(Path(model.dir) / REGISTERED_FILE, result.to_dict())
    return result
