"""The one text normalisation and the per-text checks, shared by ingest, training and serving.

Normalised text = Unicode NFC, ``\\r\\n`` and lone ``\\r`` as ``\\n``, outer whitespace stripped. The
content address of a text is the sha256 of the normalised text's UTF-8 bytes. A text is refused when it
is empty after normalisation, longer than the byte limit, or carries control characters other than tab
and newline (they are never part of prose and often mark binary junk or injection attempts).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_NEWLINES = re.compile(r"\r\n?")
# C0 control characters except tab (\x09) and newline (\x0a), and DEL. C1 controls (\x80-\x9f) are
# usually Windows-1252 punctuation decoded as Latin-1 (mojibake): kept, and counted by validation.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
MOJIBAKE = re.compile(r"[\x80-\x9f\ufffd]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class TextError(ValueError):
    """A text that cannot be used; ``reason`` is one of ``empty``, ``too_long``, ``encoding``, ``control``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def normalize_text(text: str) -> str:
    """NFC, newlines as ``\\n``, outer whitespace stripped."""
    return unicodedata.normalize("NFC", _NEWLINES.sub("\n", text)).strip()


def text_sha256(normalized: str) -> str:
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


def decode_utf8(data: bytes) -> str:
    """Strict UTF-8 decode; the error says at which byte the encoding breaks."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TextError(
            "encoding", f"not valid UTF-8 (byte {exc.start}: {data[exc.start : exc.start + 1]!r})"
        ) from None


def clean_text(raw: str | bytes, max_bytes: int) -> str:
    """The normalised text, or :class:`TextError` saying why it cannot be used.

    The byte limit is checked before any normalisation work, so a huge input costs no more than its size."""
    if isinstance(raw, bytes | bytearray | memoryview):
        raw_bytes = bytes(raw)
        if len(raw_bytes) > 4 * max_bytes:
            raise TextError("too_long", f"text is {len(raw_bytes):,} bytes (limit {max_bytes:,})")
        raw = decode_utf8(raw_bytes)
    elif len(raw) > 4 * max_bytes:  # a UTF-8 character is at most 4 bytes
        raise TextError("too_long", f"text is {len(raw):,} characters (limit {max_bytes:,} bytes)")
    if _SURROGATE.search(raw):
        raise TextError("encoding", "text holds lone surrogates (not valid UTF-8)")
    text = normalize_text(raw)
    if not text:
        raise TextError("empty", "text is empty")
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise TextError("too_long", f"text is {size:,} bytes (limit {max_bytes:,})")
    bad = _CONTROL.search(text)
    if bad:
        raise TextError("control", f"control character {bad.group()!r} at position {bad.start()}")
    return text


def clean_texts(items: list[str | bytes], max_bytes: int) -> list[str]:
    """:func:`clean_text` over a request's texts; the error names the element (``text[3]: ...``)."""
    out = []
    for i, raw in enumerate(items):
        try:
            out.append(clean_text(raw, max_bytes))
        except TextError as exc:
            raise TextError(exc.reason, f"text[{i}]: {exc}") from None
    return out
