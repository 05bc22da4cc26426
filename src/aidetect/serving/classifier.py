"""A bundle's ONNX graph behind onnxruntime, returning class probabilities (no torch, no KServe).

The predictor serves it; the drift reference profile and the optimize parity checks score with it, so
every consumer of a bundle gets the same probabilities.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from aidetect.decision import softmax
from aidetect.serving.bundle import Bundle


class OnnxClassifier:
    """Calls the bundle's graph on float32 ``[N, 3, S, S]`` input; returns ``[N, C]`` probabilities."""

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
