"""``aidetect serve``: assembles the server from a :class:`ServingConfig` and serves one bundle.

ServingConfig -> guard, inference log and predictor (:func:`build_predictor`); our REST layers on
KServe's FastAPI app (:func:`install_routes`); the KServe ModelServer (:func:`run_server`). REST
worker processes (``workers`` > 1) unpickle the predictor and call :func:`install_worker_routes`,
which the predictor carries as its ``on_worker_start`` hook.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import TYPE_CHECKING, Any

from aidetect.config import load
from aidetect.feedback.capture import Capture
from aidetect.feedback.config import FeedbackConfig
from aidetect.provenance import VerdictConfig
from aidetect.serving import metrics
from aidetect.serving.bundle import Bundle, load_bundle
from aidetect.serving.config import ServingConfig
from aidetect.serving.guard import Guard, GuardMiddleware, load_tokens
from aidetect.serving.inference_log import InferenceLog
from aidetect.serving.kserve_compat import (
    ModelBoundDataPlane,
    ModelNotFound,
    PinnedRepository,
    kserve,
    limit_grpc_contents,
    model_server,
)
from aidetect.serving.logs import configure_server_logging
from aidetect.serving.predictor import AidetectPredictor
from aidetect.serving.rest import InferEndpoint, server_error

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)


def build_guard(cfg: ServingConfig) -> Guard | None:
    """The auth / rate-limit guard, or None when both are off."""
    if not (cfg.auth_required or cfg.rate_limit_per_second > 0):
        return None
    tokens = load_tokens(cfg.auth_tokens_env, cfg.auth_tokens_file) if cfg.auth_required else []
    return Guard(
        tokens,
        cfg.auth_required,
        cfg.rate_limit_per_second,
        cfg.rate_limit_burst,
        client_header=cfg.rate_limit_client_header,
        max_keys=cfg.rate_limit_max_keys,
    )


def build_inference_log(cfg: ServingConfig, bundle: Bundle) -> InferenceLog | None:
    """The background inference-log writer, or None when no log URI is configured."""
    if not cfg.inference_log_uri:
        return None
    return InferenceLog(
        cfg.inference_log_uri,
        cfg.model_name or bundle.spec.model_name,
        bundle.spec.model_version,
        bundle.spec.decision,
        flush_rows=cfg.inference_log_flush_rows,
        flush_seconds=cfg.inference_log_flush_seconds,
        queue_size=cfg.inference_log_queue_size,
        queue_bytes=cfg.inference_log_queue_bytes,
        max_pixels=cfg.max_image_pixels,
        log_texts=cfg.inference_log_texts,
        track=cfg.track,
    )


def build_capture(model_name: str, bundle: Bundle) -> Capture | None:
    """The sampled keeping of received images (``configs/feedback.yaml`` ``capture``), or None when it
    is off. Images only: a text model keeps no inputs (its log rows hold text features)."""
    cfg = load(FeedbackConfig, "feedback").capture
    if not cfg.enabled or bundle.spec.modality != "image":
        return None
    return Capture(cfg, model_name, metrics.CaptureCounters())


def build_predictor(model_uri: str, cfg: ServingConfig) -> AidetectPredictor:
    """Load the bundle and build the (not yet loaded) predictor with its guard and inference log."""
    bundle = load_bundle(model_uri)
    cfg = dataclasses.replace(cfg, model_name=cfg.model_name or bundle.spec.model_name)
    predictor_class = AidetectPredictor
    if bundle.spec.modality == "text":
        from aidetect.serving.text import TextPredictor

        predictor_class = TextPredictor
    return predictor_class(
        bundle,
        cfg,
        guard=build_guard(cfg),
        inference_log=build_inference_log(cfg, bundle),
        capture=build_capture(cfg.model_name, bundle),
        on_worker_start=install_worker_routes,
        verdict_cfg=load(VerdictConfig, "verdict"),
    )


def install_routes(app: FastAPI, predictor: AidetectPredictor) -> None:
    """Our REST layers on KServe's FastAPI app: the guard and the fast infer endpoint in front of
    everything, and richer model metadata. Idempotent per app."""
    if getattr(app.state, "aidetect_routes", False):
        return
    app.state.aidetect_routes = True
    cfg = predictor.cfg
    build_stack = app.build_middleware_stack

    def outermost() -> Any:  # Starlette builds the stack once, on the first event
        # KServe adds its handlers when its server starts, after install_routes: its 500 handler
        # answers `Type : message`, ours a generic message and a request id
        app.add_exception_handler(Exception, _server_error)
        return GuardMiddleware(
            InferEndpoint(build_stack(), predictor),
            guard=predictor.guard,
            max_body=cfg.max_request_bytes,
            inflight=predictor.inflight,
            max_json_body=cfg.max_json_bytes,
            on_reject=lambda reason: metrics.reject(predictor.name, reason),
            # KServe (re)configures logging in each REST worker before serving: apply ours after it
            on_start=lambda: configure_server_logging(cfg.access_log),
        )

    app.build_middleware_stack = outermost  # type: ignore[method-assign]

    async def model_metadata(model_name: str) -> dict[str, Any]:
        if model_name != predictor.name:
            raise ModelNotFound(model_name)
        outputs = predictor.get_output_types()
        outputs[0]["parameters"] = {"labels": list(predictor.decision.labels)}
        return {
            "name": predictor.name,
            "versions": [predictor.spec.model_version],
            "platform": "onnxruntime_onnx",
            "inputs": predictor.get_input_types(),
            "outputs": outputs,
            "parameters": predictor.describe(),
        }

    app.add_api_route("/v2/models/{model_name}", model_metadata, methods=["GET"])
    if predictor.gives_verdicts:  # the page is for image uploads
        install_page(app, predictor)


def install_page(app: FastAPI, predictor: AidetectPredictor) -> None:
    """The analysts' review page (``/review``) on the same server, behind the same guard."""
    from aidetect.ui.config import ReviewPageConfig
    from aidetect.ui.routes import ModelView, install_review_page

    rule = predictor.decision
    model = ModelView(predictor.name, predictor.spec.model_version, rule.labels, rule.real_label)
    page_cfg = load(ReviewPageConfig, "review_page")
    install_review_page(app, model, page_cfg, predictor.cfg.max_request_bytes)


async def _server_error(request: Any, exc: Exception) -> Any:
    """A 500 from any KServe route: a generic message and a request id; the traceback only in the log."""
    from starlette.responses import Response

    status, body, headers = server_error()
    return Response(body, status, headers={k.decode(): v.decode() for k, v in headers})


def close_repository(server: Any, predictor: AidetectPredictor) -> None:
    """Disable KServe's model-repository API (gRPC load/unload answer UNIMPLEMENTED) and tie liveness
    to the model: if the predictor is ever not ready, liveness fails with readiness, so Kubernetes
    restarts the pod instead of keeping one that answers every request with 503."""
    server.model_repository_extension = PinnedRepository(server.registered_models)
    server.dataplane = ModelBoundDataPlane(server.registered_models, predictor)


def install_worker_routes(predictor: AidetectPredictor) -> None:
    """The predictor's ``on_worker_start`` hook: a spawned REST worker's KServe app gets our routes."""
    install_routes(model_server.app, predictor)
    # worker processes end without atexit: flush the log and the kept images on shutdown
    model_server.app.router.add_event_handler("shutdown", predictor.close_writers)


def run_server(model_uri: str, cfg: ServingConfig) -> None:
    """Load the bundle and serve it until SIGTERM/SIGINT (flushing the inference log and the kept
    images on the way out)."""
    model_server.args.grpc_max_receive_message_length = min(cfg.max_request_bytes, cfg.max_grpc_request_bytes)
    model_server.args.grpc_max_send_message_length = max(cfg.max_request_bytes, 4 * 1024 * 1024)
    limit_grpc_contents(cfg.max_json_bytes // 2)  # as many typed values as a JSON body may carry

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
    close_repository(server, predictor)
    # uvicorn would take the client address from X-Forwarded-For of loopback peers (the mesh sidecar),
    # which any client can write: keep the socket peer (rate_limit_client_header names a trusted header)
    os.environ.setdefault("FORWARDED_ALLOW_IPS", "")
    install_routes(model_server.app, predictor)
    configure_server_logging(cfg.access_log)
    log.info("serving %s (%s) on http :%s grpc :%s", predictor.name, model_uri, cfg.http_port, cfg.grpc_port)
    try:
        server.start([predictor])
    finally:
        predictor.close_writers()
