"""Turn a torch checkpoint into the fastest serving bundle that keeps its accuracy.

Variants: ``fp32`` (the exported ONNX graph), ``fp32-opt`` (onnxruntime's offline graph optimisation)
and ``int8`` (static QDQ quantisation calibrated on validation images). Each is checked against the
torch model on validation data (accuracy difference at most ``max_accuracy_drop`` points; the largest
probability difference is reported) and timed on this CPU; the fastest that passes becomes
``model.onnx`` in the bundle. Preprocessing goes through :mod:`aidetect.data.crops` only (the
checkpoint's ``preprocess``, copied into ``bundle.json``).
"""

from __future__ import annotations

import contextlib
import logging
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aidetect.data import crops
from aidetect.data.crops import PreprocessSpec
from aidetect.decision import DecisionSpec, softmax
from aidetect.errors import DataError
from aidetect.model.inference import predict_array
from aidetect.refs import ModelRef
from aidetect.serving.bundle import BundleSpec, write_bundle

log = logging.getLogger(__name__)

INPUT_NAME, OUTPUT_NAME = "input", "logits"
VARIANTS = ("fp32", "fp32-opt", "int8")


@dataclass
class VariantReport:
    variant: str
    accuracy: float
    accuracy_diff_points: float  # torch accuracy minus this variant's, in percentage points
    max_probability_diff: float
    latency_ms_batch1: float  # median
    throughput_batch32: float  # images per second
    size_bytes: int
    passed: bool
    note: str = ""


@dataclass
class OptimizeReport:
    chosen: str
    torch_accuracy: float
    n_validation: int
    variants: list[VariantReport] = field(default_factory=list)
    bundle_uri: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OptimizeReport:
        variants = [VariantReport(**v) for v in data.get("variants", [])]
        return cls(**{**data, "variants": variants})

    def table(self) -> str:
        cols = ("variant", "acc", "diff pp", "max |dp|", "ms@1", "img/s@32", "MB")
        head = "{:<9} {:>7} {:>8} {:>9} {:>7} {:>9} {:>6}  ok".format(*cols)
        lines = [head]
        for v in self.variants:
            lines.append(
                f"{v.variant:<9} {v.accuracy:7.4f} {v.accuracy_diff_points:8.3f} "
                f"{v.max_probability_diff:9.5f} "
                f"{v.latency_ms_batch1:7.3f} {v.throughput_batch32:9.0f} {v.size_bytes / 1e6:6.2f}  "
                f"{'yes' if v.passed else 'no ' + v.note}"
            )
        lines.append(
            f"chosen: {self.chosen} (torch accuracy {self.torch_accuracy:.4f} on {self.n_validation} images)"
        )
        return "\n".join(lines)


def export_onnx(model: nn.Module, input_size: int, path: str | Path) -> Path:
    """Export ``model`` to ONNX with a dynamic batch axis (input ``input``, output ``logits``)."""
    model = model.eval()
    example = (torch.randn(2, 3, input_size, input_size),)
    path = Path(path)
    common = {"input_names": [INPUT_NAME], "output_names": [OUTPUT_NAME]}
    try:
        batch = torch.export.Dim("batch", min=1, max=4096)
        dynamo = {"dynamic_shapes": ({0: batch},), "optimize": True, "external_data": False}
        torch.onnx.export(model, example, str(path), dynamo=True, verbose=False, **common, **dynamo)
    except Exception as exc:  # some torchvision graphs trip the exporter: fall back to TorchScript
        log.warning("dynamo ONNX export failed (%s); using the TorchScript exporter", exc)
        axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
        torch.onnx.export(model, example, str(path), dynamo=False, dynamic_axes=axes, **common)
    return path


def optimize_graph(src: Path, dst: Path) -> Path:
    """onnxruntime's offline graph optimisation (extended level: portable across CPUs)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), opts, providers=["CPUExecutionProvider"])
    return dst


def quantize_int8(src: Path, dst: Path, calibration: np.ndarray, batch: int = 16) -> Path:
    """Static int8 (QDQ, per-channel weights) calibrated on ``calibration`` (float32 [N,3,S,S]).

    Activations are unsigned (U8S8): onnxruntime's x86 int8 convolutions (VNNI) are built for u8
    activations times s8 weights; s8 activations (S8S8) measured 2.3x slower here for compact_l.
    """
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it: Iterator[np.ndarray] = (
                calibration[i : i + batch] for i in range(0, len(calibration), batch)
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            chunk = next(self._it, None)
            return None if chunk is None else {INPUT_NAME: chunk}

    prepped = dst.resolve().with_suffix(".prep.onnx")
    try:
        _prepare_for_quantization(src.resolve(), prepped)
        quantize_static(
            str(prepped),
            str(dst),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    finally:
        prepped.unlink(missing_ok=True)
    return dst


def _prepare_for_quantization(src: Path, prepped: Path) -> None:
    """onnxruntime's pre-processing (shape inference, graph optimisation) of ``src`` into ``prepped``.

    Its symbolic shape inference gives up on some graphs (the dual network's routed branches) and then
    saves its partial model into the *working directory*: it runs in a scratch directory, and on that
    failure the pre-processing runs again with onnx's own shape inference only, which such graphs pass.
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="aidetect-quant-") as scratch, contextlib.chdir(scratch):
        try:
            quant_pre_process(str(src), str(prepped), skip_symbolic_shape=False)
        except Exception as exc:  # onnxruntime raises a bare Exception("Incomplete symbolic shape inference")
            log.info("int8: symbolic shape inference failed (%s); using onnx shape inference only", exc)
            quant_pre_process(str(src), str(prepped), skip_symbolic_shape=True)


def torch_probabilities(model: nn.Module, x: np.ndarray, batch: int = 64) -> np.ndarray:
    """The torch model's probabilities on ``x``: the reference every ONNX variant must match."""
    return predict_array(model, x, batch)


def _session(path: Path, threads: int = 0) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def onnx_probabilities(path: Path, x: np.ndarray, batch: int = 64) -> np.ndarray:
    sess = _session(path)
    out = [sess.run([OUTPUT_NAME], {INPUT_NAME: x[i : i + batch]})[0] for i in range(0, len(x), batch)]
    return softmax(np.concatenate(out).astype(np.float64)).astype(np.float32)


def time_variant(path: Path, input_size: int, repeats: int = 50) -> tuple[float, float]:
    """(median ms per single-image call, images/s at batch 32) with one onnxruntime thread.

    One thread per call is how ``aidetect serve`` runs a model (parallelism comes from concurrent
    requests), so that is the setting the variants are compared in.
    """
    sess = _session(path, threads=1)
    one = np.random.default_rng(0).standard_normal((1, 3, input_size, input_size), dtype=np.float32)
    many = np.repeat(one, 32, axis=0)
    for _ in range(5):
        sess.run(None, {INPUT_NAME: one})
    singles = []
    for _ in range(repeats):
        t = time.perf_counter()
        sess.run(None, {INPUT_NAME: one})
        singles.append(time.perf_counter() - t)
    batches = []
    for _ in range(max(3, repeats // 10)):
        t = time.perf_counter()
        sess.run(None, {INPUT_NAME: many})
        batches.append(time.perf_counter() - t)
    return statistics.median(singles) * 1000.0, 32.0 / statistics.median(batches)


def preprocess_images(
    images: Sequence[bytes],
    input_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    preprocess: PreprocessSpec | None = None,
) -> np.ndarray:
    """Encoded images -> float32 [K,3,S,S] through the shared path (:mod:`aidetect.data.crops`): one
    input per image for ``resize``, every crop of every image's grid (in order) for ``crops``."""
    pre = (preprocess or PreprocessSpec()).resolved(input_size)
    x = [crops.inputs_from_bytes(data, pre, input_size, mean, std) for data in images]
    return np.concatenate(x) if x else np.zeros((0, 3, input_size, input_size), np.float32)


def validation_data(
    version: Any, labels: Sequence[str], limit: int, meta: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """Validation images of ``version`` (a ``DatasetVersion``; at most ``limit``) and label indices."""
    dataset_version = version.version_id
    rows = version.rows("val")
    if rows.empty:
        raise DataError(f"dataset {dataset_version} has no validation split")
    images = version.read_images("val")
    index = {name: i for i, name in enumerate(labels)}
    unknown = sorted(set(rows["label"]) - set(index))
    if unknown:
        raise DataError(
            f"dataset {dataset_version} has labels {unknown} the model does not know ({list(labels)})"
        )
    if len(images) > limit:
        pick = np.random.default_rng(0).choice(len(images), size=limit, replace=False)
        pick.sort()
    else:
        pick = np.arange(len(images))
    size, pre = int(meta["input_size"]), PreprocessSpec.from_meta(meta)
    # parity is checked on what the graph is fed: for a crops model every crop, with its image's label
    per_image = [crops.inputs_from_bytes(images[i], pre, size, meta["mean"], meta["std"]) for i in pick]
    labels_of = [index[rows["label"].iloc[i]] for i in pick]
    y = np.concatenate([np.full(len(a), t) for a, t in zip(per_image, labels_of, strict=True)])
    return np.concatenate(per_image), y


def evaluate_variants(
    model: nn.Module,
    input_size: int,
    x: np.ndarray,
    y: np.ndarray,
    workdir: Path,
    variants: Sequence[str] = VARIANTS,
    max_accuracy_drop: float = 0.3,
    calibration_size: int = 256,
) -> tuple[OptimizeReport, dict[str, Path]]:
    """Build, check and time each variant; choose the fastest (single-image latency) that passes."""
    ref = torch_probabilities(model, x)
    torch_acc = float((ref.argmax(1) == y).mean())
    paths: dict[str, Path] = {}
    base = export_onnx(model, input_size, workdir / "fp32.onnx")
    for name in variants:
        try:
            if name == "fp32":
                paths[name] = base
            elif name == "fp32-opt":
                paths[name] = optimize_graph(base, workdir / "fp32-opt.onnx")
            elif name == "int8":
                calib = x[np.random.default_rng(1).permutation(len(x))[:calibration_size]]
                paths[name] = quantize_int8(base, workdir / "int8.onnx", calib)
            else:
                raise DataError(f"unknown variant {name!r} (known: {', '.join(VARIANTS)})")
        except DataError:
            raise
        except Exception as exc:
            log.warning("variant %s could not be built: %s", name, exc)
    report = OptimizeReport(chosen="", torch_accuracy=torch_acc, n_validation=len(y))
    for name, path in paths.items():
        probs = onnx_probabilities(path, x)
        acc = float((probs.argmax(1) == y).mean())
        diff = (torch_acc - acc) * 100.0
        max_dp = float(np.abs(probs - ref).max())
        ms1, tput = time_variant(path, input_size)
        passed = diff <= max_accuracy_drop
        note = "" if passed else f"(accuracy drop {diff:.2f} pp > {max_accuracy_drop})"
        report.variants.append(
            VariantReport(name, acc, diff, max_dp, ms1, tput, path.stat().st_size, passed, note)
        )
    passing = [v for v in report.variants if v.passed]
    if not passing:
        raise DataError("no ONNX variant matches the torch model's accuracy; refusing to build a bundle")
    report.chosen = min(passing, key=lambda v: v.latency_ms_batch1).variant
    return report, paths


def _resolve_checkpoint(model_ref: str, tmp: Path) -> tuple[str, tuple[str, str] | None]:
    """A checkpoint file for ``model_ref`` and, for ``models:/`` URIs, the registry (name, version)."""
    if ModelRef.is_registry_uri(model_ref):
        from aidetect import registry

        parsed = ModelRef.parse(model_ref)
        name, ref = parsed.name, parsed.ref
        mv = registry.get_version(name, ref)
        dst = tmp / "registered"
        registry.download_artifacts(name, ref, "checkpoint", dst)
        found = sorted(Path(dst).rglob("*.pt"))
        if not found:
            raise DataError(f"{model_ref} has no checkpoint/ artifact")
        return str(found[0]), (name, str(mv.version))
    p = Path(model_ref)
    if p.is_dir():
        # a training folder's evaluated checkpoint carries the chosen threshold: prefer it
        for cand in (p / "eval" / "model.pt", p / "model.pt", p / "checkpoint" / "model.pt"):
            if cand.exists():
                return str(cand), None
        raise DataError(f"no model.pt in {model_ref} (or its checkpoint/ folder)")
    return model_ref, None


def optimize(
    model_ref: str,
    dataset: Any,
    out_dir: str,
    *,
    model_name: str | None = None,
    model_version: str | None = None,
    variants: Sequence[str] = VARIANTS,
    max_accuracy_drop: float = 0.3,
    max_validation: int = 2000,
    register: bool = True,
    datasets_root: str | None = None,
) -> OptimizeReport:
    """Write the bundle of ``model_ref`` (checkpoint file/folder or ``models:/`` URI) in ``out_dir``.

    ``dataset`` is a ``DatasetVersion``, a version id, or None for the one the checkpoint names."""
    from aidetect.data.versions import open_version
    from aidetect.model.checkpoint import load_checkpoint

    with tempfile.TemporaryDirectory(prefix="aidetect-optimize-") as tmp:
        ckpt_path, registered = _resolve_checkpoint(model_ref, Path(tmp))
        model, meta = load_checkpoint(ckpt_path)
        if dataset is None or isinstance(dataset, str):
            dataset_id = dataset or meta.get("dataset_version")
            if not dataset_id:
                raise DataError("no dataset version: pass --data (the checkpoint does not name one)")
            dataset = open_version(dataset_id, datasets_root)
        dataset_version = dataset.version_id
        labels = list(meta["labels"])
        x, y = validation_data(dataset, labels, max_validation, meta)
        report, paths = evaluate_variants(
            model, int(meta["input_size"]), x, y, Path(tmp), variants, max_accuracy_drop
        )
        name = model_name or (registered[0] if registered else meta.get("model_name") or "aidetect")
        version = model_version or (registered[1] if registered else str(meta.get("model_version", "0")))
        rule = DecisionSpec.from_meta(meta)
        spec = BundleSpec(
            model_name=name,
            model_version=str(version),
            labels=labels,
            positive_label=rule.fake_label,
            real_label=rule.real_label,
            input_size=int(meta["input_size"]),
            mean=[float(v) for v in meta["mean"]],
            std=[float(v) for v in meta["std"]],
            threshold=rule.threshold,
            input_name=INPUT_NAME,
            output_name=OUTPUT_NAME,
            variant=report.chosen,
            dataset_version=str(dataset_version),
            preprocess=PreprocessSpec.from_meta(meta).to_meta(),
            extra={"optimize": report.to_dict(), "arch": meta.get("arch", "")},
        )
        write_bundle(out_dir, paths[report.chosen].read_bytes(), spec)
    report.bundle_uri = out_dir
    if registered and register:
        from aidetect import registry
        from aidetect.serving.bundle import REGISTRY_ARTIFACT_PATH

        registry.log_version_artifacts(registered[0], registered[1], out_dir, REGISTRY_ARTIFACT_PATH)
    return report
