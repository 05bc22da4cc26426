"""Find the metadata blocks of an encoded image (XMP packet, EXIF block, PNG text) without decoding it.

Small walkers over the container structure (PNG chunks, JPEG markers, RIFF chunks of WebP): each
step reads a length and skips, so cost grows with the number of blocks, not their size, and every
limit (chunks walked, text inflated) is checked before the bytes are touched. A truncated or
malformed container ends the walk with an error note; what was found before it is kept.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
XMP_PNG_KEY = "XML:com.adobe.xmp"
JPEG_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
JPEG_EXIF_HEADER = b"Exif\x00\x00"
MAX_JPEG_SEGMENTS = 512


@dataclass
class Metadata:
    """The raw blocks found in one file; ``errors`` maps a block kind (text, xmp, exif) to why it failed."""

    format: str = "unknown"
    text: dict[str, str] = field(default_factory=dict)
    xmp: bytes | None = None
    exif: bytes | None = None
    errors: dict[str, str] = field(default_factory=dict)


class _Budget:
    """Bytes of inflated PNG text left for one file."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    def take(self, n: int) -> None:
        if n > self.left:
            raise ValueError("text chunks exceed the size limit")
        self.left -= n


def read_metadata(data: bytes, *, text_max_bytes: int, max_chunks: int, xmp_max_bytes: int) -> Metadata:
    """The metadata blocks of ``data`` (PNG, JPEG or WebP; other formats give an empty result)."""
    if data.startswith(PNG_SIGNATURE):
        return _png(data, text_max_bytes, max_chunks, xmp_max_bytes)
    if data.startswith(b"\xff\xd8"):
        return _jpeg(data, xmp_max_bytes)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp(data, max_chunks, xmp_max_bytes)
    return Metadata()


def _inflate(raw: bytes, budget: _Budget) -> bytes:
    """zlib-inflate at most the remaining budget (a zip bomb stops at the limit)."""
    d = zlib.decompressobj()
    out = d.decompress(raw, budget.left + 1)
    budget.take(len(out))
    return out


def _png_text(ctype: bytes, body: bytes, budget: _Budget) -> tuple[str, str]:
    key, sep, rest = body.partition(b"\x00")
    if not sep or not 1 <= len(key) <= 79:
        raise ValueError("malformed text chunk")
    if ctype == b"tEXt":
        budget.take(len(rest))
        return key.decode("latin-1"), rest.decode("latin-1")
    if ctype == b"zTXt":
        return key.decode("latin-1"), _inflate(rest[1:], budget).decode("latin-1")
    # iTXt: compression flag, method, language\0, translated keyword\0, text (UTF-8)
    if len(rest) < 2:
        raise ValueError("malformed iTXt chunk")
    compressed, rest = rest[0], rest[2:]
    _lang, _, rest = rest.partition(b"\x00")
    _tkey, _, text = rest.partition(b"\x00")
    if compressed:
        text = _inflate(text, budget)
    else:
        budget.take(len(text))
    return key.decode("latin-1"), text.decode("utf-8", "replace")


def _png(data: bytes, text_max: int, max_chunks: int, xmp_max: int) -> Metadata:
    meta = Metadata(format="PNG")
    budget = _Budget(text_max)
    pos, n = len(PNG_SIGNATURE), 0
    while pos + 8 <= len(data):
        n += 1
        if n > max_chunks:
            meta.errors["text"] = f"more than {max_chunks} chunks"
            return meta
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        start, end = pos + 8, pos + 8 + length
        if end + 4 > len(data):
            meta.errors.setdefault("text", f"truncated {ctype.decode('latin-1')} chunk")
            return meta
        if ctype in (b"tEXt", b"zTXt", b"iTXt"):
            try:
                key, text = _png_text(ctype, data[start:end], budget)
            except (ValueError, zlib.error) as exc:
                meta.errors["text"] = str(exc)
                if "size limit" in str(exc):
                    return meta
            else:
                if key == XMP_PNG_KEY:
                    _set_xmp(meta, text.encode("utf-8"), xmp_max)
                else:
                    meta.text.setdefault(key, text)
        elif ctype == b"eXIf":
            meta.exif = b"Exif\x00\x00" + data[start:end]
        elif ctype == b"IEND":
            break
        pos = end + 4
    return meta


def _set_xmp(meta: Metadata, packet: bytes, xmp_max: int) -> None:
    if len(packet) > xmp_max:
        meta.errors["xmp"] = f"XMP packet of {len(packet)} bytes exceeds the limit {xmp_max}"
    else:
        meta.xmp = packet


def _jpeg(data: bytes, xmp_max: int) -> Metadata:
    meta = Metadata(format="JPEG")
    pos = 2
    for _ in range(MAX_JPEG_SEGMENTS):
        if pos + 4 > len(data) or data[pos] != 0xFF:
            meta.errors.setdefault("exif", "truncated or malformed JPEG header")
            return meta
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no more metadata segments
            return meta
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        body = data[pos + 4 : pos + 2 + length]
        if length < 2 or len(body) != length - 2:
            meta.errors.setdefault("exif", "truncated JPEG segment")
            return meta
        if marker == 0xE1 and body.startswith(JPEG_EXIF_HEADER) and meta.exif is None:
            meta.exif = body
        elif marker == 0xE1 and body.startswith(JPEG_XMP_HEADER) and meta.xmp is None:
            _set_xmp(meta, body[len(JPEG_XMP_HEADER) :], xmp_max)
        pos += 2 + length
    return meta


def _webp(data: bytes, max_chunks: int, xmp_max: int) -> Metadata:
    meta = Metadata(format="WEBP")
    pos = 12
    for _ in range(max_chunks):
        if pos + 8 > len(data):
            return meta
        ctype, length = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = data[pos + 8 : pos + 8 + length]
        if len(body) != length:
            meta.errors.setdefault("xmp", "truncated WebP chunk")
            return meta
        if ctype == b"XMP ":
            _set_xmp(meta, body, xmp_max)
        elif ctype == b"EXIF":
            meta.exif = body if body.startswith(JPEG_EXIF_HEADER) else JPEG_EXIF_HEADER + body
        pos += 8 + length + (length & 1)
    return meta
