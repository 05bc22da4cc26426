"""Serving settings (``configs/serving.yaml``, env ``AIDETECT_SERVING__<FIELD>``, CLI flags)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aidetect.data.imaging import DEFAULT_MAX_PIXELS
from aidetect.errors import ConfigError

TRACKS = ("stable", "canary")


@dataclass
class ServingConfig:
    """Everything ``aidetect serve`` needs besides the model URI."""

    model_name: str = ""  # the route name; empty: the bundle's model_name
    track: str = "stable"  # stable | canary: which deployment this is (inference-log column, live quality)
    http_port: int = 8080
    grpc_port: int = 8081
    enable_grpc: bool = True
    workers: int = 1  # uvicorn worker processes for REST
    grpc_threads: int = 4
    access_log: bool = False  # one log line per request (uvicorn access log and KServe timings)
    # onnxruntime threads per inference call; 1 suits many small concurrent requests (parallelism comes
    # from the executor threads); raise it for large models at low concurrency; 0: onnxruntime's default
    intra_op_threads: int = 1
    # threads that decode and run requests, beside the event loop; 0: run them on the event loop itself
    infer_threads: int = 4
    # limits
    max_request_bytes: int = 64 * 1024 * 1024
    max_image_pixels: int = DEFAULT_MAX_PIXELS
    max_batch: int = 64
    # a crops bundle: the most crops one request may cost (its images' crop grids together), so memory
    # stays bounded by this budget, not by max_batch x the bundle's max_crops; resize bundles: 1 per image
    max_request_crops: int = 64
    # inference log ("" disables it): a local folder or s3:// prefix
    inference_log_uri: str = ""
    inference_log_flush_rows: int = 512
    inference_log_flush_seconds: float = 30.0
    inference_log_queue_size: int = 10_000  # queued batches
    # text models: the log keeps text features; the text itself only when this is on (privacy)
    inference_log_texts: bool = False
    # text models: the most UTF-8 bytes one text may have (max_batch bounds the texts per request)
    max_text_bytes: int = 100_000
    # optional bearer-token auth and per-token rate limit (both off by default)
    auth_tokens_env: str = "AIDETECT_SERVE_TOKENS"
    auth_tokens_file: str = ""
    auth_required: bool = False
    rate_limit_per_second: float = 0.0  # 0: no rate limit
    rate_limit_burst: int = 0  # 0: equal to one second of rate
    # the rate-limit key without a token: this header, set by a trusted proxy in front (e.g. Istio's
    # x-envoy-external-address); "": the peer address. Never a header any client may set.
    rate_limit_client_header: str = ""
    rate_limit_max_keys: int = 100_000  # buckets kept; the least recently used go first
    # memory bounds: requests in flight (beyond: 503 + Retry-After, gRPC UNAVAILABLE), the JSON part of
    # a REST body (parsed JSON takes many times its size; big payloads use the binary extension), and
    # the bytes of images waiting for the inference-log writer (beyond: the batch is dropped, counted)
    max_inflight_requests: int = 32
    max_json_bytes: int = 8 * 1024 * 1024
    # gRPC messages are parsed whole before any check, typed contents at 4+ bytes a value: a smaller
    # limit than REST's (whose binary sections are held as received); larger batches go over REST
    max_grpc_request_bytes: int = 32 * 1024 * 1024
    inference_log_queue_bytes: int = 64 * 1024 * 1024
    # chaos knobs for tests and game days (off): fraction of infer calls answered with a server error,
    # and latency added to each infer call
    fault_error_rate: float = 0.0
    fault_delay_ms: float = 0.0

    def validate(self) -> None:
        for name in ("http_port", "grpc_port"):
            port = getattr(self, name)
            if not 0 < port < 65536:
                raise ConfigError(f"{name}: {port} is not a TCP port")
        if self.track not in TRACKS:
            raise ConfigError(f"track: {self.track!r} is not one of {', '.join(TRACKS)}")
        if self.enable_grpc and self.http_port == self.grpc_port:
            raise ConfigError("grpc_port: must differ from http_port")
        positive = (
            "workers",
            "grpc_threads",
            "max_request_bytes",
            "max_image_pixels",
            "max_batch",
            "max_request_crops",
            "max_text_bytes",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.intra_op_threads < 0:
            raise ConfigError("intra_op_threads: must be >= 0")
        if self.infer_threads < 0:
            raise ConfigError(f"infer_threads: must be >= 0, got {self.infer_threads}")
        if self.inference_log_flush_rows < 1 or self.inference_log_queue_size < 1:
            raise ConfigError("inference_log_flush_rows: must be at least 1")
        if self.inference_log_flush_seconds <= 0:
            raise ConfigError("inference_log_flush_seconds: must be positive")
        if self.rate_limit_per_second < 0 or self.rate_limit_burst < 0:
            raise ConfigError("rate_limit_per_second: must be >= 0")
        if not 0.0 <= self.fault_error_rate <= 1.0:
            raise ConfigError(f"fault_error_rate: must be in [0, 1], got {self.fault_error_rate}")
        if self.fault_delay_ms < 0:
            raise ConfigError(f"fault_delay_ms: must be >= 0, got {self.fault_delay_ms}")
        bounds = ("rate_limit_max_keys", "max_inflight_requests", "max_json_bytes", "max_grpc_request_bytes")
        for name in (*bounds, "inference_log_queue_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1, got {getattr(self, name)}")


def load_serving_config(path: str | None = None, overrides: dict[str, Any] | None = None) -> ServingConfig:
    from aidetect.config import load

    return load(ServingConfig, "serving", path=path, overrides=overrides)
