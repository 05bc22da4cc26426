"""Signals from unsigned metadata: IPTC digital source type in XMP, generation parameters in PNG text,
and the EXIF ``Software`` of known generators.

These are what the file says about itself, unsigned: an AI claim is taken at its word (nobody forges
an admission), a capture claim is reported but never proof (only a verified C2PA manifest is).
"""

from __future__ import annotations

import struct
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from PIL import Image

from aidetect.provenance.config import VerdictConfig
from aidetect.provenance.containers import Metadata
from aidetect.provenance.signals import FOUND, Signal, clip, unreadable

EXIF_SOFTWARE = 0x0131
DST_LOCAL_NAME = "DigitalSourceType"
RDF_RESOURCE = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}resource"


def source_type_code(value: str) -> str:
    """``http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia`` -> the last segment."""
    return value.strip().rstrip("/").rsplit("/", 1)[-1]


def xmp_source_types(packet: bytes) -> list[str]:
    """Every IPTC ``DigitalSourceType`` in an XMP packet (attribute, element text or rdf:resource).

    defusedxml refuses any DTD, so entity expansion (an XMP bomb) never starts; the caller has already
    capped the packet's size, which bounds the parse.
    """
    root = fromstring(packet.strip(b"\x00 \r\n\t\ufeff"), forbid_dtd=True)
    found: list[str] = []
    for el in root.iter():
        for key, value in el.attrib.items():
            if key.rsplit("}", 1)[-1] == DST_LOCAL_NAME:
                found.append(source_type_code(value))
        if str(el.tag).rsplit("}", 1)[-1] == DST_LOCAL_NAME:
            value = el.attrib.get(RDF_RESOURCE) or (el.text or "")
            if value.strip():
                found.append(source_type_code(value))
    return list(dict.fromkeys(found))


def iptc_signal(meta: Metadata, cfg: VerdictConfig) -> Signal | None:
    if "xmp" in meta.errors:
        return unreadable("iptc", meta.errors["xmp"])
    if meta.xmp is None:
        return None
    try:
        types = xmp_source_types(meta.xmp)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        return unreadable("iptc", f"XMP packet not readable: {type(exc).__name__}: {exc}")
    if not types:
        return None
    ai = [t for t in types if t in cfg.ai_source_types]
    detail = {"status": FOUND, "digital_source_type": (ai or types)[0]}
    if len(types) > 1:
        detail["all"] = types[:8]
    return Signal("iptc", bool(ai), detail)


def png_parameters_signal(meta: Metadata, cfg: VerdictConfig) -> Signal | None:
    keys = [k for k in cfg.png_parameter_keys if meta.text.get(k, "").strip()]
    if keys:
        detail = {"status": FOUND, "keys": keys, "excerpt": clip(meta.text[keys[0]].strip(), 160)}
        if "text" in meta.errors:
            detail["note"] = meta.errors["text"]
        return Signal("png-parameters", True, detail)
    if "text" in meta.errors:
        return unreadable("png-parameters", meta.errors["text"])
    return None


def exif_software_signal(meta: Metadata, cfg: VerdictConfig) -> Signal | None:
    if meta.exif is None:
        return None
    try:
        exif = Image.Exif()
        exif.load(meta.exif)
        software = exif.get(EXIF_SOFTWARE)
    except (OSError, ValueError, SyntaxError, struct.error) as exc:
        return unreadable("exif-software", f"EXIF block not readable: {exc}")
    if isinstance(software, bytes):
        software = software.decode("latin-1")
    if not isinstance(software, str) or not software.strip():
        return None
    lowered = software.lower()
    match = next((g for g in cfg.generator_software if g.lower() in lowered), None)
    if match is None:
        return None
    return Signal("exif-software", True, {"status": FOUND, "software": clip(software.strip(), 120)})
