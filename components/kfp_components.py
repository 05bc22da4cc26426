"""The KFP components: one per pipeline step, built on the project's own images.

Each function below is a Lightweight Python Component body. KFP embeds its source in the IR YAML and runs it
in the image given to :func:`build` (``install_kfp_package=False``: the image already has kfp and aidetect).
A body only maps KFP artifacts (paths, metadata, metrics) to a plain step in :mod:`components.steps`, which
does the work through the aidetect library. This module deliberately has no ``from __future__ import
annotations``: KFP reads the artifact types from the real annotations.
"""

from dataclasses import dataclass

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Markdown, Metrics, Model, Output


def ingest(data_uri: str, datasets_root: str, dataset: Output[Dataset]) -> str:
    """Ingest ``data_uri`` into a content-addressed dataset version; output a reference to it."""
    from components import steps

    ref = steps.run_step("ingest", steps.ingest, data_uri=data_uri, datasets_root=datasets_root)
    steps.write_json(dataset.path, ref)
    dataset.metadata.update(steps.flat_metadata(ref))
    return ref["version_id"]


def validate(
    dataset: Input[Dataset], validated: Output[Dataset], report: Output[HTML], summary: Output[Metrics]
) -> str:
    """Run the data validation suite; critical failures stop the pipeline here.

    ``validated`` is the version later steps use (a duplicate-free derived version under the drop policy).
    """
    from components import steps

    result = steps.run_step(
        "validate",
        steps.validate,
        dataset_ref=steps.read_json(dataset.path),
        report_path=report.path,
        out_path=validated.path,
    )
    validated.metadata.update(steps.flat_metadata(steps.read_json(validated.path)))
    for name, value in result["metrics"].items():
        summary.log_metric(name, value)
    return result["version_id"]


def train(
    dataset: Input[Dataset], preset: str, mlflow_uri: str, model: Output[Model], metrics: Output[Metrics]
) -> None:
    """Train a model from the ``preset`` on the dataset version; output its checkpoint folder."""
    from components import steps

    result = steps.run_step(
        "train",
        steps.train,
        dataset_ref=steps.read_json(dataset.path),
        preset=preset,
        mlflow_uri=mlflow_uri,
        out_dir=model.path,
    )
    model.metadata.update(steps.flat_metadata(result["meta"]))
    for name, value in result["metrics"].items():
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
    from components import steps

    result = steps.run_step(
        "evaluate",
        steps.evaluate,
        dataset_ref=steps.read_json(dataset.path),
        model_dir=model.path,
        gate_config=gate_config,
        model_name=model_name,
        mlflow_uri=mlflow_uri,
        out_dir=evaluated.path,
    )
    evaluated.metadata.update(steps.flat_metadata(result["summary"]))
    for name, value in result["metrics"].items():
        metrics.log_metric(name, value)
    classification.log_confusion_matrix(result["labels"], result["confusion_matrix"])
    roc = result["roc"]
    if roc:
        classification.log_roc_curve(roc["fpr"], roc["tpr"], roc["thresholds"])


def gate(evaluated: Input[Model], report: Output[Markdown], gate_result: Output[Artifact]) -> bool:
    """The gate verdict as the pipeline's branch: True (passed) lets optimize and register run.

    The reasons are in ``gate_result``'s metadata and the Markdown report. (A single bool output, not a
    NamedTuple: kfp.local 2.17 cannot resolve a named output in a ``dsl.If`` condition.)
    """
    from components import steps

    result = steps.run_step(
        "gate",
        steps.gate,
        evaluation_dir=evaluated.path,
        report_path=report.path,
        out_path=gate_result.path,
    )
    gate_result.metadata.update({"passed": result["passed"], "reason": result["reason"]})
    return bool(result["passed"])


def optimize(evaluated: Input[Model], dataset: Input[Dataset], bundle: Output[Model]) -> None:
    """Export the thresholded model to ONNX, optimise, check parity and write the serving bundle."""
    from components import steps

    result = steps.run_step(
        "optimize",
        steps.optimize,
        model_dir=evaluated.path,
        dataset_ref=steps.read_json(dataset.path),
        out_dir=bundle.path,
    )
    bundle.metadata.update(steps.flat_metadata(result))


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
    from components import steps

    result = steps.run_step(
        "register",
        steps.register,
        dataset_ref=steps.read_json(dataset.path),
        model_dir=model.path,
        evaluation_dir=evaluated.path,
        bundle_dir=bundle.path,
        model_name=model_name,
        gate_config=gate_config,
        mlflow_uri=mlflow_uri,
    )
    steps.write_json(registered.path, result)
    registered.metadata.update(steps.flat_metadata(result))
    return str(result["version"])


def drift_check(
    model_name: str,
    alias: str,
    since: str,
    inference_log: str,
    mlflow_uri: str,
    report: Output[HTML],
    verdict: Output[Artifact],
    metrics: Output[Metrics],
) -> bool:
    """Compare the inference log window with the model's reference profile; True when drift is found."""
    from components import steps

    result = steps.run_step(
        "drift-check",
        steps.drift_check,
        model_name=model_name,
        alias=alias,
        since=since,
        inference_log=inference_log,
        mlflow_uri=mlflow_uri,
        report_path=report.path,
        verdict_path=verdict.path,
    )
    for name, value in result["metrics"].items():
        metrics.log_metric(name, value)
    verdict.metadata.update({"drift": result["drift"]})
    return bool(result["drift"])


def trigger_retrain(
    verdict: Input[Artifact],
    model_name: str,
    kfp_host: str,
    data_uri: str,
    preset: str,
    gate_config: str,
    mlflow_uri: str,
    datasets_root: str,
    record: Output[Artifact],
) -> str:
    """Start the training pipeline (KFP run on a cluster, local run otherwise) unless in cooldown."""
    from components import steps

    result = steps.run_step(
        "trigger-retrain",
        steps.trigger_retrain,
        verdict_path=verdict.path,
        model_name=model_name,
        kfp_host=kfp_host,
        data_uri=data_uri,
        training_arguments={
            "preset": preset,
            "gate_config": gate_config,
            "mlflow_uri": mlflow_uri,
            "model_name": model_name,
            "datasets_root": datasets_root,
        },
    )
    steps.write_json(record.path, result)
    record.metadata.update(steps.flat_metadata(result))
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
    trigger_retrain: object


STEP_FUNCTIONS = (ingest, validate, train, evaluate, gate, optimize, register, drift_check, trigger_retrain)


def build(image: str) -> Components:
    """Create every component to run in ``image`` (the training image: torch, kfp and aidetect)."""
    made = {
        fn.__name__: dsl.component(fn, base_image=image, install_kfp_package=False) for fn in STEP_FUNCTIONS
    }
    return Components(image=image, **made)
