"""The KServe predictor: a ``kserve.Model`` serving an ONNX bundle with onnxruntime (no torch).

Every inference request, REST (the fast endpoint in ``rest.py`` and KServe's own routes) and gRPC
alike, goes through KServe's ``Model.__call__``: ``preprocess`` -> ``validate`` -> ``predict`` ->
``postprocess``. Here ``preprocess`` checks the request and decodes its one input into a float32 batch,
``predict`` runs onnxruntime (both on the ``infer_threads`` executor, off the event loop) and
``postprocess`` decides the labels with the bundle's :class:`~aidetect.decision.DecisionSpec`, records
metrics and the inference log and builds the V2 response. ``__call__`` wraps them with the gRPC admission
check (REST requests are admitted by the guard middleware in front) and the request metrics.

Outputs (Open Inference Protocol v2): ``probabilities`` FP32 ``[N, C]`` (columns in the order of the
``labels`` model parameter, also stated in the metadata), ``label`` BYTES ``[N]`` (the decision rule) and,
for a binary model, ``probability_fake`` FP32 ``[N]`` (the fake score). Image models also answer
``verdict`` BYTES ``[N]`` (the provenance-aware verdict, :mod:`aidetect.provenance.verdict`),
``verdict_reasons`` BYTES ``[N]`` (a JSON list of reasons per image) and ``provenance`` BYTES ``[N]`` (a
JSON list of signals per image). Provenance is read from the encoded bytes of an ``image`` input (in
``preprocess``, beside the decode); for ``pixels`` and ``tensor`` inputs the detector decides alone.

The predictor imports nothing from ``app``: the assembly hands it its config, guard, inference log and
the hook that installs the REST routes in a spawned REST worker process.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np
from grpc_interceptor.exceptions import GrpcException

from aidetect.data import crops
from aidetect.feedback.capture import Capture
from aidetect.provenance import Signal, VerdictConfig, decide, read_provenance, to_json
from aidetect.serving import metrics
from aidetect.serving.bundle import Bundle
from aidetect.serving.classifier import OnnxClassifier
from aidetect.serving.config import ServingConfig
from aidetect.serving.guard import Guard, InflightLimit
from aidetect.serving.inference_log import InferenceLog, LoggedBatch
from aidetect.serving.inputs import (
    IMAGE,
    INPUT_DATATYPES,
    MAX_REQUEST_ID,
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

PROBABILITIES, LABEL, PROBABILITY_FAKE = "probabilities", "label", "probability_fake"
VERDICT, VERDICT_REASONS, PROVENANCE = "verdict", "verdict_reasons", "provenance"
T = TypeVar("T")
CROP_CHUNK = 64  # crops per onnxruntime call for a crops bundle


class InjectedFault(RuntimeError):
    """Raised on purpose by the chaos knob; answered as a server error (HTTP 500 / gRPC INTERNAL)."""


@dataclass
class Decoded:
    """``preprocess`` -> ``predict``: the request and its decoded batch."""

    request: InferRequest
    batch: Batch
    signals: list[list[Signal]] | None = None  # per image; None: no encoded bytes (pixels, tensor)
    hashes: list[str] | None = None  # sha256 per image of the bytes as received ("": none); None: not needed


@dataclass
class Scored:
    """``predict`` -> ``postprocess``: the request, its batch and the class probabilities ``[N, C]``."""

    request: InferRequest
    batch: Batch
    probabilities: np.ndarray
    signals: list[list[Signal]] | None = None
    hashes: list[str] | None = None


WorkerHook = Callable[["AidetectPredictor"], None]
Headers = dict[str, str] | None


class AidetectPredictor(Model):
    """Serves one bundle over KServe's V2 REST and gRPC data plane.

    ``on_worker_start`` runs after the predictor is unpickled in a spawned REST worker (``workers`` > 1):
    the worker's fresh KServe app needs the REST routes too. It must be picklable (a module function).
    """

    def __init__(
        self,
        bundle: Bundle,
        cfg: ServingConfig | None = None,
        *,
        guard: Guard | None = None,
        inference_log: InferenceLog | None = None,
        capture: Capture | None = None,
        on_worker_start: WorkerHook | None = None,
        verdict_cfg: VerdictConfig | None = None,
    ) -> None:
        cfg = cfg or ServingConfig()
        super().__init__(cfg.model_name or bundle.spec.model_name)
        self.bundle = bundle
        self.spec = bundle.spec
        self.cfg = cfg
        self.decision = bundle.spec.decision
        self.limits = Limits(
            max_batch=cfg.max_batch, max_image_pixels=cfg.max_image_pixels, max_crops=cfg.max_request_crops
        )
        self.pre = Preprocess(
            self.spec.input_size, tuple(self.spec.mean), tuple(self.spec.std), self.spec.preprocess_spec
        )
        self.guard = guard
        self.verdict_cfg = verdict_cfg or VerdictConfig()
        self.inflight = InflightLimit(cfg.max_inflight_requests)  # REST: the guard middleware enforces it
        self.inference_log = inference_log
        self.capture = capture  # images only: a text model keeps none
        self.on_worker_start = on_worker_start
        self.classifier: Callable[[np.ndarray], np.ndarray] | None = None
        self._executor: ThreadPoolExecutor | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    # What differs per modality (``serving/text.py`` overrides these): the model runner, its warm-up
    # input, the request decoder, the name of the fake-score output and the inference-log batch.
    fake_output = PROBABILITY_FAKE

    def make_classifier(self) -> Callable[[np.ndarray], np.ndarray]:
        return OnnxClassifier(self.bundle, self.cfg.intra_op_threads)

    def warm_up_input(self) -> np.ndarray:
        s = self.spec.input_size
        return np.zeros((1, 3, s, s), np.float32)

    def decode(self, inputs: list[Any]) -> Any:
        return decode_request_inputs(inputs, self.pre, self.limits)

    def logged_batch(self, batch: Any, probs: np.ndarray) -> LoggedBatch:
        return LoggedBatch(datetime.now(UTC), batch.images, batch.encoded, probs)

    def load(self) -> bool:
        self.classifier = self.make_classifier()
        if self.cfg.infer_threads and self._executor is None:
            self._executor = ThreadPoolExecutor(self.cfg.infer_threads, thread_name_prefix="aidetect-infer")
        self.classifier(self.warm_up_input())  # warm-up: first run allocates
        metrics.set_model_info(
            self.name, self.spec.model_version, self.spec.variant, self.spec.dataset_version
        )
        if self.cfg.fault_error_rate or self.cfg.fault_delay_ms:
            log.warning(
                "chaos knobs on: error rate %s, delay %s ms",
                self.cfg.fault_error_rate,
                self.cfg.fault_delay_ms,
            )
        self.ready = True
        return self.ready

    def stop(self) -> None:
        self.close_writers()
        if self._executor is not None:
            self._executor.shutdown(wait=False)
        super().stop()

    def close_writers(self) -> None:
        """Flush the inference log and the image capture (shutdown, SIGTERM)."""
        if self.capture is not None:
            self.capture.close()
        if self.inference_log is not None:
            self.inference_log.close()

    def __getstate__(self) -> dict[str, Any]:  # REST workers > 1 pickle the model into each process
        state = dict(self.__dict__)
        state["classifier"] = None  # an onnxruntime session and threads are rebuilt, not copied
        state["_executor"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.ready:
            self.load()
        if self.on_worker_start is not None:
            self.on_worker_start(self)

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
            {"name": PROBABILITIES, "datatype": "FP32", "shape": [-1, len(self.decision.labels)]},
            {"name": LABEL, "datatype": "BYTES", "shape": [-1]},
        ]
        if self.decision.binary:
            outs.append({"name": self.fake_output, "datatype": "FP32", "shape": [-1]})
        if self.gives_verdicts:
            outs += [
                {"name": n, "datatype": "BYTES", "shape": [-1]}
                for n in (VERDICT, VERDICT_REASONS, PROVENANCE)
            ]
        return outs

    @property
    def gives_verdicts(self) -> bool:
        """Provenance and verdicts are about image files; other modalities answer the detector only."""
        return self.spec.modality == "image"

    def describe(self) -> dict[str, Any]:
        """The model parameters reported next to the V2 metadata (labels in column order, etc.)."""
        return {
            "labels": list(self.decision.labels),
            "real_label": self.decision.real_label,
            "positive_label": self.decision.fake_label,
            "threshold": self.decision.threshold,
            "input_size": self.spec.input_size,
            "model_version": self.spec.model_version,
            "variant": self.spec.variant,
            "dataset_version": self.spec.dataset_version,
            "modality": self.spec.modality,
            "provenance": self.gives_verdicts and self.verdict_cfg.enabled,
        }

    # -- the request -------------------------------------------------------------------------------
    async def __call__(
        self,
        body: InferRequest | dict[str, Any],
        headers: Headers = None,
        verb: InferenceVerb = InferenceVerb.PREDICT,
    ) -> tuple[InferResponse, dict[str, str]]:
        start = time.perf_counter()
        protocol = "grpc" if getattr(body, "from_grpc", False) else "rest"
        status = metrics.SERVER_ERROR
        entered = False
        try:
            if protocol == "grpc":
                if self.guard is not None:
                    self._admit_grpc(headers or {})
                entered = self.inflight.enter()
                if not entered:
                    metrics.reject(self.name, "overloaded")
                    raise self.inflight.grpc_error()
            result = await super().__call__(body, headers, verb)
            status = metrics.OK
            return result
        except (InvalidInput, GrpcException) as exc:
            status = metrics.CLIENT_ERROR
            if isinstance(exc, RejectedInput):
                metrics.reject(self.name, exc.code)
            raise
        finally:
            if entered:
                self.inflight.leave()
            metrics.observe_request(self.name, protocol, status, time.perf_counter() - start)

    def _admit_grpc(self, headers: dict[str, str]) -> None:
        assert self.guard is not None
        # KServe's gRPC servicer passes metadata, not the peer: without a token or the trusted proxy
        # header, gRPC callers share one bucket (never one of their own choosing, e.g. x-forwarded-for)
        denied = self.guard.admit(headers, "grpc")
        if denied is not None:
            metrics.reject(self.name, denied.reason)
            raise denied.grpc_error()

    async def _off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the infer executor (or on the event loop when ``infer_threads`` is 0)."""
        if self._executor is None:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- KServe's hooks ----------------------------------------------------------------------------
    async def preprocess(
        self, payload: InferRequest | dict[str, Any], headers: dict[str, str] | None = None
    ) -> Decoded:
        """Check the request and decode its one input (limits enforced) into a float32 batch."""
        if not isinstance(payload, InferRequest):
            raise InvalidInput(
                "this model speaks the Open Inference Protocol v2 only (POST /v2/models/<name>/infer)"
            )
        if payload.id is not None and len(payload.id) > MAX_REQUEST_ID:
            raise RejectedInput(f"request id: longer than {MAX_REQUEST_ID} characters", "bad_request")
        self._check_requested_outputs(payload)
        return await self._off_loop(self._decode_and_read, payload)

    def _decode_and_read(self, request: InferRequest) -> Decoded:
        """Decode the input and, for encoded images, read their provenance and hash the bytes as
        received (one executor hop)."""
        batch = self.decode(request.inputs)
        encoded = getattr(batch, "encoded", None) if self.gives_verdicts else None
        signals = hashes = None
        if encoded and all(b is not None for b in encoded):
            cfg, max_pixels = self.verdict_cfg, self.limits.max_image_pixels
            signals = [read_provenance(b, cfg, max_pixels) for b in encoded if b is not None]
        if encoded and (self.inference_log is not None or self.capture is not None):
            hashes = [hashlib.sha256(b).hexdigest() if b is not None else "" for b in encoded]
        return Decoded(request, batch, signals, hashes)

    def validate(self, payload: Decoded) -> Decoded:
        return payload  # preprocess checked the request; KServe's own check is for dict payloads

    async def predict(
        self,
        payload: Decoded,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> Scored:
        """Class probabilities from onnxruntime (after the chaos knobs, when they are on)."""
        await self._inject_faults()
        if self.classifier is None:
            raise RuntimeError("predict before load()")
        probs = await self._off_loop(self.score, payload.batch)
        return Scored(payload.request, payload.batch, probs, payload.signals, payload.hashes)

    def score(self, batch: Any) -> np.ndarray:
        """Probabilities ``[N, C]``: the graph on ``batch.x`` (crops: in chunks of :data:`CROP_CHUNK`
        rows, bounding activation memory), then a crops bundle's rows aggregated into one per image."""
        assert self.classifier is not None
        owner = getattr(batch, "owner", None)
        if owner is None:
            return self.classifier(batch.x)
        x = batch.x
        probs = np.concatenate([self.classifier(x[i : i + CROP_CHUNK]) for i in range(0, len(x), CROP_CHUNK)])
        n = int(owner[-1]) + 1
        return crops.aggregate(probs, owner, n, self.pre.spec.aggregate, self.decision)

    async def postprocess(
        self,
        result: Scored,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> InferResponse:
        """Labels and fake score by the decision rule; metrics, inference log; the V2 response."""
        probs, request = result.probabilities, result.request
        rule = self.decision
        labels = rule.names(rule.decide(probs))
        p_fake = rule.fake_score(probs) if rule.binary else None
        metrics.observe_predictions(self.name, labels, None if p_fake is None else p_fake.tolist())
        verdicts = self._verdicts(result) if self.gives_verdicts else []
        kept = self._keep(result, rule.fake_score(probs)) if self.capture and result.hashes else []
        if self.inference_log is not None:
            logged = self.logged_batch(result.batch, probs)
            if verdicts:
                logged.verdicts, logged.provenance = verdicts[0], verdicts[2]
            logged.sha256, logged.kept = result.hashes or (), kept
            self.inference_log.submit(logged)
        n = len(labels)
        outputs = [
            InferOutput(PROBABILITIES, [n, probs.shape[1]], "FP32", data=probs),
            InferOutput(LABEL, [n], "BYTES", data=np.array([s.encode() for s in labels], dtype=np.object_)),
        ]
        if p_fake is not None:
            outputs.append(InferOutput(self.fake_output, [n], "FP32", data=p_fake))
        for name, values in zip((VERDICT, VERDICT_REASONS, PROVENANCE), verdicts, strict=False):
            data = np.array([x.encode() for x in values], dtype=np.object_)
            outputs.append(InferOutput(name, [n], "BYTES", data=data))
        return InferResponse(
            response_id=request.id or str(uuid.uuid4()),
            model_name=self.name,
            model_version=self.spec.model_version,
            infer_outputs=outputs,
            # gRPC always answers with raw output contents for numpy data; KServe's flag would trip
            # over numpy truthiness there, so it is only passed for REST.
            use_binary_outputs=False if request.from_grpc else request.use_binary_outputs,
            requested_outputs=request.request_outputs,
        )

    # -- helpers -----------------------------------------------------------------------------------
    def _keep(self, result: Scored, fake_scores: np.ndarray) -> list[bool]:
        """Offer each received image to the capture (non-blocking); whether each will be kept."""
        assert self.capture is not None and result.hashes is not None
        encoded = result.batch.encoded
        return [
            bool(sha) and self.capture.offer(sha, data, float(score))
            for sha, data, score in zip(result.hashes, encoded, fake_scores.tolist(), strict=True)
        ]

    def _verdicts(self, result: Scored) -> list[list[str]]:
        """Verdicts, reasons (JSON) and provenance (JSON) per image; counted in the metrics."""
        verdicts = decide(result.signals, result.probabilities, self.decision, self.verdict_cfg)
        n = len(verdicts)
        names = [v.verdict for v in verdicts]
        metrics.observe_verdicts(self.name, names)
        signals = [to_json(s) for s in result.signals] if result.signals is not None else ["[]"] * n
        return [names, [v.reasons_json() for v in verdicts], signals]

    async def _inject_faults(self) -> None:
        if self.cfg.fault_delay_ms:
            await asyncio.sleep(self.cfg.fault_delay_ms / 1000.0)
        if self.cfg.fault_error_rate and random.random() < self.cfg.fault_error_rate:
            raise InjectedFault(f"injected fault (fault_error_rate={self.cfg.fault_error_rate})")

    def _check_requested_outputs(self, request: InferRequest) -> None:
        known = {o["name"] for o in self.get_output_types()}
        for out in request.request_outputs or []:
            if out.name not in known:
                msg = (
                    f"output '{out.name}': unknown output name (expected one of: {', '.join(sorted(known))})"
                )
                raise RejectedInput(msg, "unknown_output")
