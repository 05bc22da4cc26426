"""The one model-input encoding of a normalised text, shared by training, evaluation and serving.

A text becomes the bytes of its UTF-8 form with runs of whitespace collapsed to one space, truncated
to ``max_len`` bytes, each byte as an id ``byte + 1`` (0 pads). Both text models read these ids (the
ONNX input ``ids`` INT64 ``[N, L]``), so serving needs no tokenizer, no locale and no torch, and the
TF-IDF model's n-grams are exactly scikit-learn's ``analyzer="char"`` n-grams of :func:`model_string`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

# scikit-learn's char analyzer collapses whitespace runs with exactly this pattern (on the latin-1 view).
_WHITE_SPACES = re.compile(r"\s\s+")
INPUT_NAME = "ids"
OUTPUT_NAME = "probabilities"


def model_string(text: str, max_len: int) -> str:
    """The latin-1 view of the UTF-8 bytes (one character per byte), whitespace runs collapsed, truncated."""
    return _WHITE_SPACES.sub(" ", text.encode("utf-8").decode("latin-1"))[:max_len]


def encode_ids(texts: Sequence[str], max_len: int, min_len: int = 1) -> np.ndarray:
    """``int64 [N, L]`` byte ids (``byte + 1``); 0 pads to the batch's longest text (at least ``min_len``)."""
    strings = [model_string(t, max_len) for t in texts]
    width = max([min_len, *map(len, strings)])
    out = np.zeros((len(strings), width), dtype=np.int64)
    for i, s in enumerate(strings):
        if s:
            out[i, : len(s)] = np.frombuffer(s.encode("latin-1"), dtype=np.uint8).astype(np.int64) + 1
    return out
