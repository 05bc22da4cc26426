"""Text bundles through the same server: V2 input ``text`` BYTES ``[N]`` (UTF-8).

Outputs: ``probabilities`` FP32 ``[N, C]`` (label order), ``label`` BYTES ``[N]`` (the bundle's
:class:`~aidetect.decision.DecisionSpec`) and, for a binary model, ``probability_ai`` FP32 ``[N]`` (the
fake score, named after the modality's fake class). Each text is normalised and checked exactly as at
ingest (:func:`aidetect.data.text.normalize.clean_texts`) and encoded with the training encoding
(:func:`aidetect.data.text.encode.encode_ids`); invalid UTF-8, empty texts, texts over the byte limit,
control characters and batches over ``max_batch`` are client errors (HTTP 400 / gRPC INVALID_ARGUMENT)
naming the element. The inference log gets text features, not the text (unless ``log_texts``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from aidetect.data.text.encode import encode_ids
from aidetect.data.text.normalize import TextError, clean_text, text_sha256
from aidetect.serving.bundle import Bundle
from aidetect.serving.inference_log import LoggedBatch
from aidetect.serving.inputs import RejectedInput, _check_batch, _shape, split_bytes_tensor
from aidetect.serving.kserve_compat import InferInput, raw_bytes
from aidetect.serving.predictor import AidetectPredictor, Decoded

TEXT = "text"
PROBABILITY_AI = "probability_ai"
MIN_LEN = 8  # as in training: padding is masked, so this changes no probability


@dataclass
class TextBatch:
    """Model input (byte ids) plus the normalised texts (for the inference log)."""

    x: np.ndarray  # int64 [N, L]
    texts: list[str] = field(default_factory=list)


def _elements(inp: InferInput, max_bytes: int) -> list[bytes | str]:
    raw = raw_bytes(inp)
    if raw is not None:
        items: list[Any] = list(split_bytes_tensor(raw, inp.name))
    else:
        data = inp.data
        if data is None:
            raise RejectedInput(f"input '{inp.name}': no data", "bad_shape")
        items = data if isinstance(data, list) else [data]  # [N]: a flat list of strings
    for i, item in enumerate(items):
        if not isinstance(item, (str, bytes)):
            msg = f"input '{inp.name}' element {i}: expected a UTF-8 string, got {type(item).__name__}"
            raise RejectedInput(msg, "bad_encoding")
        if len(item) > max_bytes:  # before any decoding: a 10 MB text costs no more than its bytes
            msg = f"input '{inp.name}' element {i}: {len(item):,} bytes, above the limit of {max_bytes:,}"
            raise RejectedInput(msg, "too_large")
    return items


def decode_text_request(inputs: list[InferInput], max_batch: int, max_bytes: int, max_len: int) -> TextBatch:
    """The request's one ``text`` input -> byte ids, or a :class:`RejectedInput` naming the problem."""
    from aidetect.serving.inputs import Limits

    if len(inputs) != 1 or inputs[0].name != TEXT:
        names = ", ".join(i.name for i in inputs) or "none"
        raise RejectedInput(f"a text model takes exactly one input '{TEXT}' (got: {names})", "unknown_input")
    inp = inputs[0]
    if inp.datatype != "BYTES":
        raise RejectedInput(f"input '{TEXT}': expected datatype BYTES, got {inp.datatype}", "bad_datatype")
    shape = _shape(inp)
    if len(shape) != 1:
        raise RejectedInput(f"input '{TEXT}': expected shape [N], got {shape}", "bad_shape")
    _check_batch(TEXT, shape[0], Limits(max_batch=max_batch))
    items = _elements(inp, max_bytes)
    if len(items) != shape[0]:
        msg = f"input '{TEXT}': shape says {shape[0]} elements but the data holds {len(items)}"
        raise RejectedInput(msg, "bad_shape")
    texts = []
    for i, item in enumerate(items):
        try:
            texts.append(clean_text(item, max_bytes))
        except TextError as exc:
            raise RejectedInput(f"input '{TEXT}' element {i}: {exc}", exc.reason) from None
    return TextBatch(encode_ids(texts, max_len, min_len=MIN_LEN), texts)


class TextClassifier:
    """The text bundle's graph (``ids`` INT64 ``[N, L]`` -> ``probabilities``) behind onnxruntime."""

    def __init__(self, bundle: Bundle, intra_op_threads: int = 0) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if intra_op_threads:
            opts.intra_op_num_threads = intra_op_threads
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(bundle.onnx_path), opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        (y,) = self.session.run([self.output_name], {self.input_name: ids})
        return np.asarray(y, dtype=np.float32)


class TextPredictor(AidetectPredictor):
    """The KServe predictor for a text bundle: the image predictor's request path with text decoding."""

    fake_output = PROBABILITY_AI

    def make_classifier(self) -> TextClassifier:
        return TextClassifier(self.bundle, self.cfg.intra_op_threads)

    def warm_up_input(self) -> np.ndarray:
        return np.ones((1, MIN_LEN), np.int64)

    def decode(self, inputs: list[Any]) -> TextBatch:
        return decode_text_request(inputs, self.cfg.max_batch, self.cfg.max_text_bytes, self.spec.max_len)

    def _decode_and_read(self, request: Any) -> Decoded:
        """Decode the texts; each logged row is keyed by the sha256 of its normalised text, the key the
        label log holds for texts (``aidetect feedback import`` with a ``text`` column), so reviewers'
        labels join the predictions for live quality without the log keeping the text."""
        decoded = super()._decode_and_read(request)
        batch = decoded.batch
        if self.inference_log is not None and isinstance(batch, TextBatch):
            decoded.hashes = [text_sha256(t) for t in batch.texts]
        return decoded

    def logged_batch(self, batch: Any, probs: np.ndarray) -> LoggedBatch:
        return LoggedBatch(datetime.now(UTC), [], [], probs, texts=batch.texts)

    def get_input_types(self) -> list[dict[str, Any]]:
        return [{"name": TEXT, "datatype": "BYTES", "shape": [-1]}]

    def describe(self) -> dict[str, Any]:
        out = {k: v for k, v in super().describe().items() if k != "input_size"}
        return {
            **out,
            "modality": "text",
            "max_len": self.spec.max_len,
            "max_text_bytes": self.cfg.max_text_bytes,
        }
