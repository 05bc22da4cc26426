"""Near-duplicate texts by MinHash over word 3-gram shingles, with banded LSH for candidate pairs.

Deterministic (shingles are hashed with CRC32, the permutations come from a fixed seed) and bounded: the
caller passes a sample. Pairs are confirmed on the estimated Jaccard similarity of their signatures.
"""

from __future__ import annotations

import re
import zlib
from collections import defaultdict

import numpy as np

_WORD = re.compile(r"\w+")
_PRIME = np.uint64((1 << 31) - 1)  # x * a stays below 2**62: no uint64 overflow
NUM_PERM = 64
BANDS = 16


def _shingles(text: str, k: int = 3) -> np.ndarray:
    words = _WORD.findall(text.lower())
    grams = [" ".join(words[i : i + k]) for i in range(max(1, len(words) - k + 1))] if words else [text]
    return np.unique(np.fromiter((zlib.crc32(g.encode()) for g in grams), dtype=np.uint64))


def signatures(texts: list[str], seed: int = 0) -> np.ndarray:
    """MinHash signatures ``[N, NUM_PERM]`` (uint64)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(1, int(_PRIME), NUM_PERM, dtype=np.uint64)
    b = rng.integers(0, int(_PRIME), NUM_PERM, dtype=np.uint64)
    out = np.empty((len(texts), NUM_PERM), dtype=np.uint64)
    for i, text in enumerate(texts):
        sh = (_shingles(text) % _PRIME)[:, None]
        out[i] = ((sh * a + b) % _PRIME).min(axis=0)
    return out


def near_duplicate_pairs(texts: list[str], threshold: float = 0.8) -> list[tuple[int, int, float]]:
    """``(i, j, estimated Jaccard)`` for pairs at or above ``threshold`` (i < j), exact copies included."""
    sig = signatures(texts)
    rows = NUM_PERM // BANDS
    buckets: dict[tuple[int, bytes], list[int]] = defaultdict(list)
    for i in range(len(texts)):
        for band in range(BANDS):
            buckets[(band, sig[i, band * rows : (band + 1) * rows].tobytes())].append(i)
    candidates = {
        (m[x], m[y])
        for m in buckets.values()
        if len(m) > 1
        for x in range(len(m))
        for y in range(x + 1, len(m))
    }
    out = []
    for i, j in sorted(candidates):
        sim = float((sig[i] == sig[j]).mean())
        if sim >= threshold:
            out.append((i, j, sim))
    return out
