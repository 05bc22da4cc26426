"""The KServe predictor: a ``kserve.Model`` serving an ONNX bundle with onnxruntime (no torch).

Outputs (Open Inference Protocol v2): ``probabilities`` FP32 ``[N, C]`` (columns in the order of the
``labels`` model parameter, also stated in the metadata), ``label`` BYTES ``[N]`` and, for a binary
model, ``probability_fake`` FP32 ``[N]`` (probability of the positive class; ``label`` is the positive
class when it reaches the bundle's threshold).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import numpy as np
import onnxruntime as ort
from grpc_interceptor.exceptions import ResourceExhausted, Unauthenticated

from aidetect.serving import metrics
from aidetect.serving.bundle import Bundle
from aidetect.serving.guard import Guard
from aidetect.serving.inference_log import InferenceLog, LoggedBatch
from aidetect.serving.inputs import (
    IMAGE,
    INPUT_DATATYPES,
    PIXELS,
    TENSOR,
    Batch,
    Limits,
    Preprocess,
    RejectedInput,
    decode_request_inputs,
)
from aidetect.serving.kserve_compat import (
    InferenceVerb,
    InferOutput,
    InferRequest,
    InferResponse,
    InvalidInput,
    Model,
)

log = logging.getLogger(__name__)

FAULT_ERROR_RATE_ENV = "AIDETECT_SERVE_FAULT_ERROR_RATE"
FAULT_DELAY_MS_ENV = "AIDETECT_SERVE_FAULT_DELAY_MS"
PROBABILITIES, LABEL, PROBABILITY_FAKE = "probabilities", "label", "probability_fake"


class InjectedFault(RuntimeError):
    """Raised on purpose by the chaos knob; answered as a server error (HTTP 500 / gRPC INTERNAL)."""


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _env_float(name: str) -> float:
    try:
        return float(os.environ.get(name, "0") or 0)
    except ValueError:
        log.warning("%s=%r is not a number; ignored", name, os.environ.get(name))
        return 0.0


class OnnxClassifier:
    """The bundle's ONNX graph behind onnxruntime, returning class probabilities."""

    def __init__(self, bundle: Bundle, intra_op_threads: int = 0) -> None:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if intra_op_threads:
            opts.intra_op_num_threads = intra_op_threads
        opts.inter_op_num_threads = 1
        # requests arrive on several executor threads: idle ORT threads must sleep, not spin
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(bundle.onnx_path), opts, providers=["CPUExecutionProvider"])
        spec = bundle.spec
        names = [i.name for i in self.session.get_inputs()]
        self.input_name = spec.input_name if spec.input_name in names else names[0]
        outs = [o.name for o in self.session.get_outputs()]
        self.output_name = spec.output_name if spec.output_name in outs else outs[0]
        self.output_is_probability = bool(spec.extra.get("output_is_probability", False))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        (y,) = self.session.run([self.output_name], {self.input_name: x})
        y = np.asarray(y, dtype=np.float32)
        return y if self.output_is_probability else softmax(y)


class AidetectPredictor(Model):
    """Serves one bundle over KServe's V2 REST and gRPC data plane."""

    def __init__(
        self,
        bundle: Bundle,
        name: str | None = None,
        limits: Limits | None = None,
        intra_op_threads: int = 0,
        inference_log: InferenceLog | None = None,
        guard: Guard | None = None,
        infer_threads: int = 4,
    ) -> None:
        super().__init__(name or bundle.spec.model_name)
        self.bundle = bundle
        self.spec = bundle.spec
        self.limits = limits or Limits()
        self.intra_op_threads = intra_op_threads
        self.infer_threads = infer_threads
        self._executor: ThreadPoolExecutor | None = None
        self.inference_log = inference_log
        self.guard = guard
        self.pre = Preprocess(self.spec.input_size, tuple(self.spec.mean), tuple(self.spec.std))
        self.classifier: OnnxClassifier | None = None
        self.fault_error_rate = _env_float(FAULT_ERROR_RATE_ENV)
        self.fault_delay_s = _env_float(FAULT_DELAY_MS_ENV) / 1000.0

    # -- lifecycle ---------------------------------------------------------------------------------
    def load(self) -> bool:
        self.classifier = OnnxClassifier(self.bundle, self.intra_op_threads)
        if self.infer_threads and self._executor is None:
            self._executor = ThreadPoolExecutor(self.infer_threads, thread_name_prefix="aidetect-infer")
        s = self.spec.input_size
        self.classifier(np.zeros((1, 3, s, s), np.float32))  # warm-up: first run allocates
        metrics.set_model_info(
            self.name, self.spec.model_version, self.spec.variant, self.spec.dataset_version
        )
        if self.fault_error_rate or self.fault_delay_s:
            log.warning(
                "chaos knobs on: error rate %s, delay %s s", self.fault_error_rate, self.fault_delay_s
            )
        self.ready = True
        return self.ready

    def stop(self) -> None:
        if self.inference_log is not None:
            self.inference_log.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False)
        super().stop()

    def __getstate__(self) -> dict[str, Any]:  # REST workers > 1 pickle the model into each process
        state = dict(self.__dict__)
        state["classifier"] = None
        state["inference_log"] = None
        state["_executor"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.ready:
            self.load()
        cfg = getattr(self, "serving_config", None)
        if cfg is not None:  # a spawned REST worker: its fresh KServe app needs our routes too
            from aidetect.serving.kserve_compat import model_server
            from aidetect.serving.server import install_routes, make_inference_log

            self.inference_log = make_inference_log(cfg, self.bundle, self.name)
            install_routes(model_server.app, self, cfg)

    # -- metadata ----------------------------------------------------------------------------------
    def get_input_types(self) -> list[dict[str, Any]]:
        s = self.spec.input_size
        return [
            {"name": IMAGE, "datatype": INPUT_DATATYPES[IMAGE], "shape": [-1]},
            {"name": PIXELS, "datatype": INPUT_DATATYPES[PIXELS], "shape": [-1, -1, -1, 3]},
            {"name": TENSOR, "datatype": INPUT_DATATYPES[TENSOR], "shape": [-1, 3, s, s]},
        ]

    def get_output_types(self) -> list[dict[str, Any]]:
        outs = [
            {"name": PROBABILITIES, "datatype": "FP32", "shape": [-1, len(self.spec.labels)]},
            {"name": LABEL, "datatype": "BYTES", "shape": [-1]},
        ]
        if self.spec.binary:
            outs.append({"name": PROBABILITY_FAKE, "datatype": "FP32", "shape": [-1]})
        return outs

    def describe(self) -> dict[str, Any]:
        """The model parameters reported next to the V2 metadata (labels in column order, etc.)."""
        return {
            "labels": list(self.spec.labels),
            "positive_label": self.spec.positive_label,
            "threshold": self.spec.threshold,
            "input_size": self.spec.input_size,
            "model_version": self.spec.model_version,
            "variant": self.spec.variant,
            "dataset_version": self.spec.dataset_version,
        }

    # -- inference ---------------------------------------------------------------------------------
    async def __call__(
        self, body: Any, headers: dict[str, str] | None = None, verb: InferenceVerb = InferenceVerb.PREDICT
    ) -> Any:
        start = time.perf_counter()
        protocol = "grpc" if getattr(body, "from_grpc", False) else "rest"
        status = metrics.SERVER_ERROR
        try:
            if protocol == "grpc" and self.guard is not None:
                self._guard_grpc(headers or {})
            result = await super().__call__(body, headers, verb)
            status = metrics.OK
            return result
        except (InvalidInput, Unauthenticated, ResourceExhausted) as exc:
            status = metrics.CLIENT_ERROR
            if isinstance(exc, RejectedInput):
                metrics.reject(self.name, exc.code)
            raise
        finally:
            metrics.observe_request(self.name, protocol, status, time.perf_counter() - start)

    def _guard_grpc(self, headers: dict[str, str]) -> None:
        assert self.guard is not None
        denied = self.guard.check(headers.get("authorization"), headers.get("x-forwarded-for", "grpc"))
        if denied is None:
            return
        if denied.status == 401:
            metrics.reject(self.name, "unauthorized")
            raise Unauthenticated(denied.message)
        metrics.reject(self.name, "rate_limited")
        raise ResourceExhausted(f"{denied.message}; retry after {denied.retry_after} s")

    def _check_requested_outputs(self, request: InferRequest) -> None:
        known = {o["name"] for o in self.get_output_types()}
        for out in request.request_outputs or []:
            if out.name not in known:
                msg = (
                    f"output '{out.name}': unknown output name (expected one of: {', '.join(sorted(known))})"
                )
                raise RejectedInput(msg, "unknown_output")

    def _infer_sync(self, request: InferRequest) -> tuple[Batch, np.ndarray]:
        batch = decode_request_inputs(request.inputs, self.pre, self.limits)
        assert self.classifier is not None
        return batch, self.classifier(batch.x)

    async def predict(
        self, payload: InferRequest, headers: dict[str, str] | None = None, response_headers: Any = None
    ) -> InferResponse:
        if not isinstance(payload, InferRequest):
            raise InvalidInput(
                "this model speaks the Open Inference Protocol v2 only (POST /v2/models/<name>/infer)"
            )
        if self.fault_delay_s:
            await asyncio.sleep(self.fault_delay_s)
        if self.fault_error_rate and random.random() < self.fault_error_rate:
            raise InjectedFault(f"injected fault ({FAULT_ERROR_RATE_ENV}={self.fault_error_rate})")
        self._check_requested_outputs(payload)
        if self._executor is None:  # infer_threads 0: decode and run on the event loop
            batch, probs = self._infer_sync(payload)
        else:
            loop = asyncio.get_running_loop()
            batch, probs = await loop.run_in_executor(self._executor, self._infer_sync, payload)
        labels, p_fake = self._labels(probs)
        metrics.observe_predictions(self.name, labels, None if p_fake is None else p_fake.tolist())
        if self.inference_log is not None:
            ts = datetime.now(UTC)
            self.inference_log.submit(LoggedBatch(ts, batch.images, batch.encoded, labels, probs))
        n = len(labels)
        outputs = [
            InferOutput(PROBABILITIES, [n, probs.shape[1]], "FP32", data=probs),
            InferOutput(LABEL, [n], "BYTES", data=np.array([s.encode() for s in labels], dtype=np.object_)),
        ]
        if p_fake is not None:
            outputs.append(InferOutput(PROBABILITY_FAKE, [n], "FP32", data=p_fake))
        return InferResponse(
            response_id=payload.id or str(uuid.uuid4()),
            model_name=self.name,
            model_version=self.spec.model_version,
            infer_outputs=outputs,
            # gRPC always answers with raw output contents for numpy data; KServe's flag would trip
            # over numpy truthiness there, so it is only passed for REST.
            use_binary_outputs=False if payload.from_grpc else payload.use_binary_outputs,
            requested_outputs=payload.request_outputs,
        )

    def _labels(self, probs: np.ndarray) -> tuple[list[str], np.ndarray | None]:
        names = self.spec.labels
        if self.spec.binary:
            pos = self.spec.positive_index
            p_fake = np.ascontiguousarray(probs[:, pos], dtype=np.float32)
            other = names[1 - pos]
            return [names[pos] if p >= self.spec.threshold else other for p in p_fake], p_fake
        return [names[i] for i in probs.argmax(axis=1)], None
