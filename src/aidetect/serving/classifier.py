"""A bundle's ONNX graph behind onnxruntime, returning class probabilities (no torch, no KServe).

The predictor serves it; the drift reference profile and the optimize parity checks score with it, so
every consumer of a bundle gets the same probabilities.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from aidetect.decision import softmax
from aidetect.serving.bundle import Bundle


def serving_session(onnx_path: Path, intra_op_threads: int = 0) -> ort.InferenceSession:
    """An onnxruntime CPU session set up as ``aidetect serve`` runs every model.

    ``intra_op_threads`` per call (0: onnxruntime's default); one inter-op thread; idle threads sleep
    instead of spinning, since requests arrive on several executor threads."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if intra_op_threads:
        opts.intra_op_num_threads = intra_op_threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])


class OnnxClassifier:
    """Calls the bundle's graph on float32 ``[N, 3, S, S]`` input; returns ``[N, C]`` probabilities."""

    def __init__(self, bundle: Bundle, intra_op_threads: int = 0) -> None:
        self.session = serving_session(bundle.onnx_path, intra_op_threads)
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
