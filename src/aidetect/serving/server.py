"""``aidetect serve``: the KServe ModelServer (REST + gRPC) serving one bundle."""

from __future__ import annotations

import logging
from typing import Any

from aidetect.serving.config import ServingConfig

log = logging.getLogger(__name__)


def build_predictor(model_uri: str, cfg: ServingConfig) -> Any:
    """Load the bundle and build the (not yet loaded) predictor with its guard and inference log."""
    from aidetect.serving.bundle import load_bundle
    from aidetect.serving.guard import Guard, load_tokens
    from aidetect.serving.inputs import Limits
    from aidetect.serving.predictor import AidetectPredictor

    bundle = load_bundle(model_uri)
    name = cfg.model_name or bundle.spec.model_name
    guard = None
    if cfg.auth_required or cfg.rate_limit_per_second > 0:
        tokens = load_tokens(cfg.auth_tokens_env, cfg.auth_tokens_file) if cfg.auth_required else []
        guard = Guard(tokens, cfg.auth_required, cfg.rate_limit_per_second, cfg.rate_limit_burst)
    return AidetectPredictor(
        bundle,
        name=name,
        limits=Limits(max_batch=cfg.max_batch, max_image_pixels=cfg.max_image_pixels),
        intra_op_threads=cfg.intra_op_threads,
        infer_threads=cfg.infer_threads,
        inference_log=make_inference_log(cfg, bundle, name),
        guard=guard,
    )


def make_inference_log(cfg: ServingConfig, bundle: Any, name: str) -> Any:
    """The background inference-log writer, or None when no log URI is configured."""
    if not cfg.inference_log_uri:
        return None
    from aidetect.serving.inference_log import InferenceLog

    return InferenceLog(
        cfg.inference_log_uri,
        name,
        bundle.spec.model_version,
        bundle.spec.labels,
        bundle.spec.positive_label if bundle.spec.binary else None,
        flush_rows=cfg.inference_log_flush_rows,
        flush_seconds=cfg.inference_log_flush_seconds,
        queue_size=cfg.inference_log_queue_size,
    )


def install_routes(app: Any, predictor: Any, cfg: ServingConfig) -> None:
    """Our REST layers on KServe's FastAPI app: the guard and the fast infer endpoint in front of
    everything, and richer model metadata. Idempotent per app (REST workers call it again)."""
    from aidetect.serving import metrics
    from aidetect.serving.guard import GuardMiddleware
    from aidetect.serving.kserve_compat import ModelNotFound
    from aidetect.serving.logs import configure_server_logging
    from aidetect.serving.rest import InferEndpoint

    if getattr(app.state, "aidetect_routes", False):
        return
    app.state.aidetect_routes = True
    build_stack = app.build_middleware_stack

    def outermost() -> Any:  # Starlette builds the stack once, on the first event
        return GuardMiddleware(
            InferEndpoint(build_stack(), predictor),
            guard=predictor.guard,
            max_body=cfg.max_request_bytes,
            on_reject=lambda reason: metrics.reject(predictor.name, reason),
            # KServe (re)configures logging in each REST worker before serving: apply ours after it
            on_start=lambda: configure_server_logging(cfg.access_log),
        )

    app.build_middleware_stack = outermost

    async def model_metadata(model_name: str) -> dict[str, Any]:
        if model_name != predictor.name:
            raise ModelNotFound(model_name)
        outputs = predictor.get_output_types()
        outputs[0]["parameters"] = {"labels": list(predictor.spec.labels)}
        return {
            "name": predictor.name,
            "versions": [predictor.spec.model_version],
            "platform": "onnxruntime_onnx",
            "inputs": predictor.get_input_types(),
            "outputs": outputs,
            "parameters": predictor.describe(),
        }

    app.add_api_route("/v2/models/{model_name}", model_metadata, methods=["GET"])


def run_server(model_uri: str, cfg: ServingConfig) -> None:
    """Load the bundle and serve it until SIGTERM/SIGINT (flushing the inference log on the way out)."""
    from aidetect.serving.kserve_compat import kserve, model_server

    model_server.args.grpc_max_receive_message_length = cfg.max_request_bytes
    model_server.args.grpc_max_send_message_length = max(cfg.max_request_bytes, 4 * 1024 * 1024)

    predictor = build_predictor(model_uri, cfg)
    predictor.load()
    server = kserve.ModelServer(
        http_port=cfg.http_port,
        grpc_port=cfg.grpc_port,
        workers=cfg.workers,
        max_threads=cfg.grpc_threads,
        enable_grpc=cfg.enable_grpc,
        enable_latency_logging=False,
        grace_period=10,
    )
    install_routes(model_server.app, predictor, cfg)
    predictor.serving_config = cfg  # REST worker processes re-install the routes when unpickled
    from aidetect.serving.logs import configure_server_logging

    configure_server_logging(cfg.access_log)
    log.info("serving %s (%s) on http :%s grpc :%s", predictor.name, model_uri, cfg.http_port, cfg.grpc_port)
    try:
        server.start([predictor])
    finally:
        if predictor.inference_log is not None:
            predictor.inference_log.close()
