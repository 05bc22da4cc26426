"""Read every provenance signal of one encoded image: :func:`read_provenance`.

Each reader is bounded (see the modules) and isolated: whatever one of them meets, a hostile file
included, becomes an ``unreadable`` signal of its kind and the others still run. Nothing raises to
the caller, so the detector's verdict is always given.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aidetect.data.imaging import DEFAULT_MAX_PIXELS
from aidetect.provenance.c2pa_manifest import c2pa_signal
from aidetect.provenance.config import VerdictConfig
from aidetect.provenance.containers import Metadata, read_metadata
from aidetect.provenance.metadata import exif_software_signal, iptc_signal, png_parameters_signal
from aidetect.provenance.signals import Signal, unreadable
from aidetect.provenance.watermark import watermark_signal

log = logging.getLogger(__name__)


def _guarded(kind: str, fn: Callable[[], Signal | None]) -> Signal | None:
    try:
        return fn()
    except Exception as exc:  # a reader bug or a parser surprise: reported, never raised
        log.warning("provenance reader %s failed: %s: %s", kind, type(exc).__name__, exc)
        return unreadable(kind, f"reader failed: {type(exc).__name__}")


def read_provenance(data: bytes, cfg: VerdictConfig, max_pixels: int = DEFAULT_MAX_PIXELS) -> list[Signal]:
    """The signals found in ``data`` (absent evidence gives no entry), in a fixed kind order."""
    if not cfg.enabled:
        return []
    meta = _guarded_metadata(data, cfg)
    steps: list[tuple[str, Callable[[], Signal | None]]] = [
        ("c2pa", lambda: c2pa_signal(data, cfg)),
        ("iptc", lambda: iptc_signal(meta, cfg)),
        ("png-parameters", lambda: png_parameters_signal(meta, cfg)),
        ("exif-software", lambda: exif_software_signal(meta, cfg)),
        ("watermark", lambda: watermark_signal(data, cfg, max_pixels)),
    ]
    return [s for kind, fn in steps if (s := _guarded(kind, fn)) is not None]


def _guarded_metadata(data: bytes, cfg: VerdictConfig) -> Metadata:
    try:
        return read_metadata(
            data,
            text_max_bytes=cfg.png_text_max_bytes,
            max_chunks=cfg.png_max_chunks,
            xmp_max_bytes=cfg.xmp_max_bytes,
        )
    except Exception as exc:  # same contract as _guarded: the metadata readers report it
        log.warning("provenance container walk failed: %s: %s", type(exc).__name__, exc)
        why = f"container not readable: {type(exc).__name__}"
        return Metadata(errors={"xmp": why, "text": why})
