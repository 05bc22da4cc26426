"""Running a text ONNX model (torch-free): sessions and batched probabilities over normalised texts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from aidetect.data.text.encode import INPUT_NAME, OUTPUT_NAME, encode_ids

MIN_LEN = 8  # the CNN's receptive field needs a few positions; padding is masked, so it changes nothing


def session(model: str | Path | bytes, threads: int = 0) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    src = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])


def probabilities(sess: Any, texts: list[str], max_len: int, batch: int = 256) -> np.ndarray:
    """``[N, C]`` float32 probabilities, in order; batches sorted by length to keep padding small."""
    order = np.argsort([len(t) for t in texts], kind="stable")
    out: np.ndarray | None = None
    for start in range(0, len(texts), batch):
        idx = order[start : start + batch]
        ids = encode_ids([texts[i] for i in idx], max_len, min_len=MIN_LEN)
        p = sess.run([OUTPUT_NAME], {INPUT_NAME: ids})[0].astype(np.float32)
        if out is None:
            out = np.zeros((len(texts), p.shape[1]), np.float32)
        out[idx] = p
    if out is None:
        width = sess.get_outputs()[0].shape[1]
        return np.zeros((0, int(width) if isinstance(width, int) else 2), np.float32)
    return out
