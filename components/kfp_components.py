"""The KFP components: one per pipeline step, built on the project's own images.

Each function below is a Lightweight Python Component body. KFP embeds its source in the IR YAML and runs it
in the image given to :func:`build` (``install_kfp_package=False``: the image already has kfp and aidetect).
A body only maps KFP artifacts (paths, metadata, metrics) to one :mod:`aidetect.flows` call and back; the
work, and every rule, lives in the library. This module deliberately has no ``from __future__ import
annotations``: KFP reads the artifact types from the real annotations.
"""

from dataclasses import dataclass

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Markdown, Metrics, Model, Output


def ingest(data_uri: str, datasets_root: str, dataset: Output[Dataset]) -> str:
    """Ingest ``data_uri`` into a content-addressed dataset version; output a reference to it."""
    from aidetect import flows
    from aidetect.flows.steprun import flat_metadata, run_step
    from aidetect.model.lineage import write_json

    done = run_step("ingest", flows.ingest, data_uri, flows.Stores(datasets_root=datasets_root))
    ref = done.summary()
    write_json(dataset.path, ref)
    dataset.metadata.update(flat_metadata(ref))
    return done.dataset.version_id


def validate(
    dataset: Input[Dataset], validated: Output[Dataset], report: Output[HTML], summary: Output[Metrics]
) -> str:
    """Run the data validation suite; critical failures stop the pipeline here.

    ``validated`` is the version later steps use (a duplicate-free derived version under the drop policy).
    """
    from pathlib import Path

    from aidetect import flows
    from aidetect.data.validation_report import render_html
    from aidetect.flows.steprun import flat_metadata, run_step
    from aidetect.model.lineage import read_json, write_json

    ref = flows.DatasetRef.from_dict(read_json(dataset.path))
    stores = flows.Stores(datasets_root=ref.root)
    done = run_step("validate", flows.validate, ref, stores, raise_on_critical=False)
    Path(report.path).parent.mkdir(parents=True, exist_ok=True)
    Path(report.path).write_text(render_html(done.result))
    run_step("validate", done.result.raise_for_critical)
    write_json(validated.path, done.dataset.to_dict())
    validated.metadata.update(flat_metadata(done.dataset.to_dict()))
    for name, value in done.result.summary_metrics().items():
        summary.log_metric(name, value)
    return done.dataset.version_id


def train(
    dataset: Input[Dataset],
    preset: str,
    mlflow_uri: str,
    model: Output[Model],
    metrics: Output[Metrics],
    init_from: str = "",
) -> None:
    """Train a model from the ``preset`` on the dataset version; output its checkpoint folder.
    ``init_from`` (``models:/...``, the champion when retraining): warm start when the network matches."""
    from aidetect import flows
    from aidetect.flows.steprun import flat_metadata, run_step
    from aidetect.model.lineage import read_json

    ref = flows.DatasetRef.from_dict(read_json(dataset.path))
    stores = flows.Stores(datasets_root=ref.root, tracking_uri=mlflow_uri)
    overrides = {"progress": False}
    _, result = run_step(
        "train", flows.train, ref, stores, model.path, preset=preset, overrides=overrides, init_from=init_from
    )
    model.metadata.update(flat_metadata({**result.summary(), "preset": preset}))
    for name, value in result.metrics().items():
        metrics.log_metric(name, value)


def evaluate(
    dataset: Input[Dataset],
    model: Input[Model],
    gate_config: str,
    model_name: str,
    mlflow_uri: str,
    evaluated: Output[Model],
    metrics: Output[Metrics],
    classification: Output[ClassificationMetrics],
) -> None:
    """Evaluate on the test split with slices and the gate rules; the KFP UI draws the confusion matrix and
    ROC. ``evaluated`` holds the thresholded checkpoint, gate reports and plots."""
    from aidetect import flows
    from aidetect.flows.steprun import flat_metadata, run_step
    from aidetect.model.lineage import read_json

    ref = flows.DatasetRef.from_dict(read_json(dataset.path))
    stores = flows.Stores(datasets_root=ref.root, tracking_uri=mlflow_uri, model_name=model_name)
    ev = run_step(
        "evaluate",
        flows.evaluate,
        flows.TrainedModel(model.path),
        stores,
        dataset=ref,
        out=evaluated.path,
        gates=gate_config or None,
    )
    evaluated.metadata.update(flat_metadata(ev.summary()))
    for name, value in ev.metrics.items():
        metrics.log_metric(name, value)
    classification.log_confusion_matrix(ev.report["labels"], ev.report["metrics"]["confusion"])
    roc = ev.roc
    if roc:
        classification.log_roc_curve(roc["fpr"], roc["tpr"], roc["thresholds"])


def gate(evaluated: Input[Model], report: Output[Markdown], gate_result: Output[Artifact]) -> bool:
    """The gate verdict as the pipeline's branch: True (passed) lets optimize and register run.

    The reasons are in ``gate_result``'s metadata and the Markdown report. (A single bool output, not a
    NamedTuple: kfp.local 2.17 cannot resolve a named output in a ``dsl.If`` condition.)
    """
    from pathlib import Path

    from aidetect import flows
    from aidetect.flows.steprun import run_step
    from aidetect.model.lineage import write_json

    ev = run_step("gate", flows.Evaluation.load, evaluated.path)
    Path(report.path).parent.mkdir(parents=True, exist_ok=True)
    Path(report.path).write_text((Path(ev.dir) / "gate_report.md").read_text())
    write_json(gate_result.path, ev.report)
    gate_result.metadata.update({"passed": ev.passed, "reason": ev.reason})
    return ev.passed


def optimize(evaluated: Input[Model], dataset: Input[Dataset], bundle: Output[Model]) -> None:
    """Export the thresholded model to ONNX, optimise, check parity and write the serving bundle."""
    from aidetect import flows
    from aidetect.flows.steprun import flat_metadata, run_step
    from aidetect.model.lineage import read_json

    ref = flows.DatasetRef.from_dict(read_json(dataset.path))
    ev = run_step("optimize", flows.Evaluation.load, evaluated.path)
    made = run_step(
        "optimize", flows.optimize, ev, flows.Stores(datasets_root=ref.root), bundle.path, dataset=ref
    )
    bundle.metadata.update(flat_metadata(made.summary()))


def register(
    dataset: Input[Dataset],
    model: Input[Model],
    evaluated: Input[Model],
    bundle: Input[Model],
    model_name: str,
    gate_config: str,
    mlflow_uri: str,
    registered: Output[Artifact],
) -> str:
    """Register the gated model version with its bundle and reference profile (idempotent: identical
    inputs return the existing version)."""
    from aidetect import flows
    from aidetect.flows.steprun import flat_metadata, run_step
    from aidetect.model.lineage import read_json, write_json

    ref = flows.DatasetRef.from_dict(read_json(dataset.path))
    stores = flows.Stores(datasets_root=ref.root, tracking_uri=mlflow_uri, model_name=model_name)
    reg = run_step(
        "register",
        flows.register,
        flows.TrainedModel(model.path),
        stores,
        evaluation=flows.Evaluation.load(evaluated.path),
        bundle=flows.BundleRef(bundle.path),
        gate_config=gate_config or None,
        idempotent=True,
        record=False,
    )
    write_json(registered.path, reg.to_dict())
    registered.metadata.update(flat_metadata(reg.to_dict()))
    return reg.version


def drift_check(
    model_name: str,
    alias: str,
    since: str,
    inference_log: str,
    mlflow_uri: str,
    reports_uri: str,
    report: Output[HTML],
    verdict: Output[Artifact],
    metrics: Output[Metrics],
) -> bool:
    """Compare the inference log window with the model's reference profile (verdict published under
    ``reports_uri``, "": the config's); True when drift is found."""
    from pathlib import Path

    from aidetect import storage
    from aidetect.flows import Stores
    from aidetect.flows.monitoring import drift_check as check
    from aidetect.flows.steprun import run_step
    from aidetect.model.lineage import write_json

    stores = Stores(tracking_uri=mlflow_uri)
    found = run_step("drift-check", check, model_name, alias, since, inference_log, stores,
                     reports_uri=reports_uri)  # fmt: skip
    Path(report.path).parent.mkdir(parents=True, exist_ok=True)
    page = found["report_uri"] and storage.read_bytes(found["report_uri"])
    Path(report.path).write_bytes(page or f"<p>no verdict: {found['reasons'][0]}</p>".encode())
    write_json(verdict.path, found)
    metrics.log_metric("drift_share", float(found["drift_share"]))
    metrics.log_metric("drifted_features", float(len(found["drifted_features"])))
    metrics.log_metric("rows_current", float(found["rows_current"]))
    verdict.metadata.update({"drift": bool(found["drift_detected"])})
    return bool(found["drift_detected"])


def quality_check(
    model_name: str,
    alias: str,
    since: str,
    inference_log: str,
    labels_root: str,
    mlflow_uri: str,
    reports_uri: str,
    verdict: Output[Artifact],
    metrics: Output[Metrics],
) -> bool:
    """Join reviewers' labels with the inference log window (verdict published under ``reports_uri``,
    "": the config's); True when the live quality degraded."""
    from aidetect.flows import Stores
    from aidetect.flows.loop import quality_check as check
    from aidetect.flows.steprun import flat_metadata, run_step
    from aidetect.model.lineage import write_json

    stores = Stores(tracking_uri=mlflow_uri)
    found = run_step("quality-check", check, model_name, alias, since, inference_log, stores,
                     labels_root=labels_root, reports_uri=reports_uri)  # fmt: skip
    write_json(verdict.path, found)
    verdict.metadata.update(flat_metadata({k: found[k] for k in ("status", "degraded", "reasons")}))
    for name, value in found["counts"].items():
        metrics.log_metric(f"count_{name}", float(value))
    return bool(found["degraded"])


def decide_retrain(
    drift: Input[Artifact], quality: Input[Artifact], scheduled: bool, decision: Output[Artifact]
) -> bool:
    """One verdict from both checks (drift or degradation, or ``scheduled``); True: grow and retrain."""
    from aidetect.flows.loop import retrain_decision
    from aidetect.flows.steprun import flat_metadata, run_step
    from aidetect.model.lineage import read_json, write_json

    made = run_step(
        "decide-retrain", retrain_decision, read_json(drift.path), read_json(quality.path), scheduled
    )
    write_json(decision.path, made)
    decision.metadata.update(flat_metadata(made))
    return bool(made["retrain"])


def grow(
    decision: Input[Artifact],
    data_uri: str,
    datasets_root: str,
    labels_root: str,
    capture_store: str,
    state_uri: str,
    train_on: Output[Dataset],
) -> bool:
    """Grow the served model's dataset line with the reviewers' labels (or keep ``data_uri`` when growth
    is off); True when there is something to retrain on. Within the cooldown recorded at ``state_uri``
    (asked first: nothing grown) or too few labels: False, the reason in metadata."""
    from aidetect.flows import Stores
    from aidetect.flows.loop import grow_training_data
    from aidetect.flows.steprun import flat_metadata, run_step
    from aidetect.model.lineage import read_json, write_json

    stores = Stores(datasets_root=datasets_root)
    made = run_step("grow", grow_training_data, read_json(decision.path), data_uri, stores,
                    labels_root=labels_root, capture_store=capture_store, state_uri=state_uri)  # fmt: skip
    write_json(train_on.path, made)
    train_on.metadata.update(flat_metadata(made))
    return bool(made["launch"])


def trigger_retrain(
    verdict: Input[Artifact],
    train_on: Input[Dataset],
    model_name: str,
    kfp_host: str,
    preset: str,
    gate_config: str,
    mlflow_uri: str,
    datasets_root: str,
    state_uri: str,
    record: Output[Artifact],
) -> str:
    """Start the training pipeline on ``train_on`` (warm-started from the served model; a KFP run on a
    cluster, a local run otherwise) unless in cooldown; launches recorded at ``state_uri`` (object
    storage on a cluster: the step's pod, and its disk, end with the step)."""
    from aidetect.flows.monitoring import trigger_retrain as trigger
    from aidetect.flows.steprun import flat_metadata, run_step
    from aidetect.model.lineage import read_json, write_json

    arguments = {
        "preset": preset,
        "gate_config": gate_config,
        "mlflow_uri": mlflow_uri,
        "model_name": model_name,
        "datasets_root": datasets_root,
    }
    result = run_step(
        "trigger-retrain",
        trigger,
        read_json(verdict.path),
        model_name,
        kfp_host,
        read_json(train_on.path)["uri"],
        arguments,
        verdict_uri=verdict.path,
        grow_first=False,  # the grow step did
        state_uri=state_uri,
    )
    write_json(record.path, result)
    record.metadata.update(flat_metadata(result))
    return str(result["action"])


@dataclass(frozen=True)
class Components:
    """The components of both pipelines, bound to one image."""

    image: str
    ingest: object
    validate: object
    train: object
    evaluate: object
    gate: object
    optimize: object
    register: object
    drift_check: object
    quality_check: object
    decide_retrain: object
    grow: object
    trigger_retrain: object


STEP_FUNCTIONS = (
    ingest, validate, train, evaluate, gate, optimize, register,
    drift_check, quality_check, decide_retrain, grow, trigger_retrain,
)  # fmt: skip


def build(image: str) -> Components:
    """Create every component to run in ``image`` (the training image: torch, kfp and aidetect)."""
    made = {
        fn.__name__: dsl.component(fn, base_image=image, install_kfp_package=False) for fn in STEP_FUNCTIONS
    }
    return Components(image=image, **made)
