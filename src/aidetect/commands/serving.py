"""``aidetect optimize | serve | predict | explain``."""

from __future__ import annotations

import re
from pathlib import Path

import click

from aidetect.errors import AidetectError


@click.command()
@click.option(
    "--model", "model_uri", required=True, help="Bundle: folder, s3:// prefix or models:/<name>@<alias>."
)
@click.option("--config", "config_path", default=None, help="Serving YAML (default configs/serving.yaml).")
@click.option("--name", default=None, help="Route name of the model (default: the bundle's model_name).")
@click.option("--http-port", type=int, default=None)
@click.option("--grpc-port", type=int, default=None)
@click.option("--no-grpc", is_flag=True, default=False, help="REST only.")
@click.option("--workers", type=int, default=None, help="REST worker processes.")
@click.option("--threads", "intra_op_threads", type=int, default=None, help="onnxruntime threads (0: auto).")
@click.option(
    "--infer-threads", type=int, default=None, help="Request threads beside the event loop (0: on the loop)."
)
@click.option("--max-batch", type=int, default=None)
@click.option("--max-image-pixels", type=int, default=None)
@click.option("--max-request-bytes", type=int, default=None)
@click.option(
    "--inference-log", "inference_log_uri", default=None, help="Folder or s3:// prefix for the log."
)
@click.option("--access-log/--no-access-log", default=None, help="One log line per request.")
def serve(model_uri: str, config_path: str | None, no_grpc: bool, name: str | None, **flags: object) -> None:
    """Serve a model bundle over the Open Inference Protocol v2 (KServe ModelServer, REST + gRPC)."""
    from aidetect.serving.app import run_server
    from aidetect.serving.config import load_serving_config

    overrides = {k: v for k, v in flags.items() if v is not None}
    if no_grpc:
        overrides["enable_grpc"] = False
    if name:
        overrides["model_name"] = name
    cfg = load_serving_config(config_path, overrides)
    run_server(model_uri, cfg)


def _read_image(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise AidetectError(f"cannot read {path}: {exc.strerror}") from None


@click.command()
@click.argument("images", nargs=-1, required=True)
@click.option("--url", default="http://127.0.0.1:8080", show_default=True, help="Server base URL.")
@click.option("--model", "model_name", default=None, help="Model name (default: the only model served).")
@click.option("--token", envvar="AIDETECT_TOKEN", default=None, help="Bearer token (or $AIDETECT_TOKEN).")
@click.option("--batch", type=int, default=16, show_default=True, help="Images per request.")
def predict(images: tuple[str, ...], url: str, model_name: str | None, token: str | None, batch: int) -> None:
    """Classify IMAGES with a running server and print label, fake probability, verdict and its first
    reason per image."""
    from aidetect.serving.client import V2Client

    client = V2Client(url, token)
    model = model_name or client.default_model()
    width = max(len(p) for p in images)
    for start in range(0, len(images), max(1, batch)):
        chunk = images[start : start + batch]
        try:
            preds = client.predict(model, [_read_image(p) for p in chunk])
        except AidetectError as exc:
            bad = re.search(r"element (\d+)", str(exc))
            where = chunk[int(bad.group(1))] if bad and int(bad.group(1)) < len(chunk) else chunk[0]
            raise AidetectError(f"{where}: {exc}") from None
        for path, pred in zip(chunk, preds, strict=True):
            if pred.probability_fake is not None:
                detail = f"p(fake)={pred.probability_fake:.3f}"
            else:
                detail = " ".join(f"{k}={v:.3f}" for k, v in pred.probabilities.items())
            verdict = f"  {pred.verdict:<14}  {pred.reasons[0]}" if pred.verdict and pred.reasons else ""
            click.echo(f"{path:<{width}}  {pred.label:<6}  {detail}{verdict}")


@click.command()
@click.option(
    "--model", "model_ref", required=True, help="Checkpoint file/folder, or models:/<name>@<alias>."
)
@click.option("--data", "dataset_version", default=None, help="Dataset version for calibration and parity.")
@click.option("--out", "out_dir", required=True, help="New folder (or s3:// prefix) for the bundle.")
@click.option("--name", "model_name", default=None, help="Model name in the bundle (default: registry name).")
@click.option("--version", "model_version", default=None, help="Model version in the bundle.")
@click.option(
    "--variants", default="fp32,fp32-opt,int8", show_default=True, help="Comma-separated variants to try."
)
@click.option("--max-accuracy-drop", type=float, default=0.3, show_default=True, help="Percentage points.")
@click.option("--max-validation", type=int, default=2000, show_default=True, help="Validation images used.")
@click.option("--no-register", is_flag=True, help="Do not log the bundle to the MLflow model version.")
def optimize(
    model_ref: str,
    dataset_version: str | None,
    out_dir: str,
    model_name: str | None,
    model_version: str | None,
    variants: str,
    max_accuracy_drop: float,
    max_validation: int,
    no_register: bool,
) -> None:
    """Export to ONNX, build optimised and int8 variants, check parity and speed, write the best bundle.

    For a training folder the bundle is remembered, so `aidetect register` attaches exactly it; for a
    registered version it is attached to that version (unless --no-register)."""
    from aidetect import flows
    from aidetect.model.optimize import OptimizeReport

    bundle = flows.optimize(
        model_ref,
        flows.Stores(),
        out_dir,
        dataset=flows.DatasetRef(dataset_version, "") if dataset_version else None,
        variants=tuple(v.strip() for v in variants.split(",") if v.strip()),
        max_accuracy_drop=max_accuracy_drop,
        max_validation=max_validation,
        name=model_name,
        version=model_version,
        attach=not no_register,
    )
    click.echo(OptimizeReport.from_dict(bundle.report).table())
    click.echo(f"bundle: {bundle.uri}")


@click.command()
@click.option("--model", "checkpoint", required=True, help="Torch checkpoint (local or s3://).")
@click.argument("images", nargs=-1)
@click.option(
    "--out", "out_dir", default="explanations", show_default=True, help="Where heatmaps go (images)."
)
@click.option("--target", default=None, help="Class to explain (default: the predicted one).")
@click.option("--serve", "serve_", is_flag=True, help="Run the KServe explainer server instead.")
# KServe appends --model_name, --predictor_host, --http_port (and --workers with containerConcurrency) to a
# custom explainer's arguments: the explainer must accept them, or it exits 2 in a crash loop.
@click.option(
    "--name",
    "--model_name",
    "name",
    default="detector",
    show_default=True,
    help="Model name on the :explain route.",
)
@click.option("--http-port", "--http_port", "http_port", type=int, default=8080, show_default=True)
@click.option(
    "--predictor_host",
    "--predictor-host",
    "predictor_host",
    default=None,
    help="Accepted from KServe and unused: Grad-CAM runs its own torch copy of the model.",
)
@click.option(
    "--workers", type=int, default=None, help="Accepted from KServe and unused: one explainer process."
)
@click.option(
    "--max-image-pixels",
    type=int,
    default=None,
    help="Pixel limit per image (default: imaging.DEFAULT_MAX_PIXELS).",
)
def explain(
    checkpoint: str,
    images: tuple[str, ...],
    out_dir: str,
    target: str | None,
    serve_: bool,
    name: str,
    http_port: int,
    predictor_host: str | None,
    workers: int | None,
    max_image_pixels: int | None,
) -> None:
    """Grad-CAM heatmaps for IMAGES, or (--serve) the KServe explainer behind the :explain route."""
    from aidetect.data import imaging
    from aidetect.model.explain import GradCam, run_explainer_server

    # resolved here, not in the option: importing imaging (numpy, Pillow) would slow down `aidetect --help`
    max_image_pixels = max_image_pixels or imaging.DEFAULT_MAX_PIXELS

    if serve_:
        run_explainer_server(name, checkpoint, http_port, max_image_pixels)
        return
    if not images:
        raise AidetectError("give IMAGE paths to explain, or --serve to run the explainer server")

    cam = GradCam.from_checkpoint(checkpoint)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for path in images:
        try:
            data = _read_image(path)
            exp = cam.explain(imaging.decode_rgb(data, max_image_pixels), target, data)
        except ValueError as exc:
            raise AidetectError(str(exc)) from None
        dest = out / f"{Path(path).stem}.gradcam.png"
        dest.write_bytes(exp.overlay_png)
        probs = " ".join(f"{k}={v:.3f}" for k, v in exp.probabilities.items())
        click.echo(f"{path}  {exp.label}  {probs}  -> {dest}")
