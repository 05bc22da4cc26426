"""The DWT-DCT invisible watermark that the Stable Diffusion reference scripts embed
(``invisible-watermark``, method ``dwtDct``), decoded only when ``watermark_enabled``.

The package's ``__init__`` imports its RivaGAN model and with it torch, which the serving image does
not have; the DWT-DCT codec (``imwatermark/maxDct.py``) needs only numpy, OpenCV and PyWavelets, so
that one module is loaded on its own. Cost is bounded: images under ``watermark_min_side`` are refused
(reported unreadable), and only whole top rows up to ``watermark_max_pixels`` are decoded (the mark
repeats block by block in row-major order, so a full-width top band keeps every bit's position).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from aidetect.data.imaging import ImageDecodeError, decode_rgb
from aidetect.provenance.config import VerdictConfig
from aidetect.provenance.signals import FOUND, Signal, unreadable

SCALES = (0, 36, 36)  # the package's dwtDct defaults: U and V channels, step 36
BLOCK = 4


@functools.lru_cache(maxsize=1)
def _codec() -> Any:
    spec = importlib.util.find_spec("imwatermark")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("invisible-watermark is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "maxDct.py"
    mod_spec = importlib.util.spec_from_file_location("aidetect_imwatermark_maxdct", path)
    if mod_spec is None or mod_spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    return module.EmbedMaxDct


def payload_bits(text: str) -> np.ndarray:
    return np.unpackbits(np.frombuffer(text.encode("utf-8"), np.uint8)).astype(bool)


def top_band(width: int, height: int, cfg: VerdictConfig) -> int:
    """Rows to decode: all of them, or as many whole rows as the pixel budget allows (multiple of 8)."""
    return min(height, cfg.watermark_max_pixels // width) // 8 * 8


def watermark_signal(data: bytes, cfg: VerdictConfig, max_pixels: int) -> Signal | None:
    if not cfg.watermark_enabled:
        return None
    try:
        codec = _codec()
        img = decode_rgb(data, max_pixels)
    except ImportError as exc:
        return unreadable("watermark", f"decoder unavailable: {exc}")
    except ImageDecodeError as exc:
        return unreadable("watermark", str(exc))
    w, h = img.size
    if min(w, h) < cfg.watermark_min_side:
        return unreadable("watermark", f"image {w}x{h} is smaller than {cfg.watermark_min_side} px")
    rows = top_band(w, h, cfg)
    if rows < cfg.watermark_min_side:
        return unreadable("watermark", f"image {w}x{h} is too wide to decode within the pixel budget")
    bgr = np.ascontiguousarray(np.asarray(img.crop((0, 0, w, rows)))[:, :, ::-1])
    best: tuple[float, str] = (0.0, "")
    decoded: dict[int, np.ndarray] = {}
    for payload in cfg.watermark_payloads:
        expected = payload_bits(payload.text)
        n = len(expected)
        if n not in decoded:
            embed = codec(watermarks=[], wmLen=n, scales=list(SCALES), block=BLOCK)
            decoded[n] = np.asarray(embed.decode(bgr))
        accuracy = float(np.mean(decoded[n] == expected))
        best = max(best, (accuracy, payload.name))
    accuracy, name = best
    if accuracy < cfg.watermark_min_bit_accuracy:
        return None
    return Signal("watermark", True, {"status": FOUND, "payload": name, "bit_accuracy": round(accuracy, 3)})
