"""C2PA content credentials through ``c2pa-python``: the claim, its digital source type and whether the
signature verifies against the configured trust anchors.

Only a manifest whose status the policy accepts (``c2pa_accept``, by default ``trusted``) claims
anything; a tampered (``invalid``), ``expired`` or ``untrusted`` manifest is reported with what it
claims and why it is not proof. Remote manifests and OCSP are never fetched (no network in the
serving path).
"""

from __future__ import annotations

import functools
import io
import json
from pathlib import Path
from typing import Any

from aidetect.provenance.config import VerdictConfig
from aidetect.provenance.metadata import source_type_code
from aidetect.provenance.signals import Signal, clip, unreadable

# JUMBF labels every embedded manifest store carries; without them there is nothing to read
C2PA_MARKERS = (b"c2pa", b"jumb")
MIME = {b"\x89PNG": "image/png", b"\xff\xd8": "image/jpeg", b"RIFF": "image/webp"}


def mime_of(data: bytes) -> str | None:
    return next((m for magic, m in MIME.items() if data.startswith(magic)), None)


@functools.lru_cache(maxsize=8)
def _settings(anchors_path: str) -> str:
    """Reader settings as JSON: offline, with the extra trust anchors when configured."""
    settings: dict[str, Any] = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
    if anchors_path:
        settings["trust"] = {"user_anchors": Path(anchors_path).read_text()}
    return json.dumps(settings)


def _status(state: str | None, failures: list[str]) -> str:
    if state == "Trusted":
        return "trusted"
    if any(code.endswith(".expired") for code in failures):
        return "expired"
    if state == "Invalid" or [c for c in failures if c != "signingCredential.untrusted"]:
        return "invalid"
    return "untrusted"


def _source_type(manifest: dict[str, Any]) -> str | None:
    for assertion in manifest.get("assertions") or []:
        if not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        for action in (assertion.get("data") or {}).get("actions") or []:
            dst = action.get("digitalSourceType")
            if dst:
                return source_type_code(str(dst))
    return None


def _generator(manifest: dict[str, Any]) -> str:
    info = manifest.get("claim_generator_info") or []
    if info and isinstance(info[0], dict):
        return " ".join(str(info[0].get(k, "")) for k in ("name", "version")).strip()
    return str(manifest.get("claim_generator", ""))


def c2pa_signal(data: bytes, cfg: VerdictConfig) -> Signal | None:
    """The C2PA signal of ``data``, None when it carries no manifest."""
    mime = mime_of(data)
    if mime is None or not all(m in data for m in C2PA_MARKERS):
        return None
    if len(data) > cfg.c2pa_max_bytes:
        return unreadable("c2pa", f"file of {len(data)} bytes exceeds c2pa_max_bytes {cfg.c2pa_max_bytes}")
    import c2pa  # the native SDK loads on first use, not at import of the serving path

    try:
        context = c2pa.Context.from_json(_settings(cfg.c2pa_trust_anchors))
        reader = c2pa.Reader.try_create(mime, io.BytesIO(data), None, context)
        if reader is None:  # the markers were there, a manifest store was not
            return None
        with reader:
            store = json.loads(reader.json())
    except (c2pa.C2paError, OSError, ValueError, KeyError) as exc:
        return unreadable("c2pa", f"manifest not readable: {exc}")
    manifest = (store.get("manifests") or {}).get(store.get("active_manifest") or "", {})
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    failures = [str(f.get("code")) for f in results.get("failure") or []]
    status = _status(store.get("validation_state"), failures)
    dst = _source_type(manifest)
    accepted = status in cfg.c2pa_accept
    signer = manifest.get("signature_info") or {}
    detail: dict[str, Any] = {"status": status, "digital_source_type": dst or ""}
    detail["claim_generator"] = clip(_generator(manifest), 80)
    names = [str(signer[k]) for k in ("issuer", "common_name") if signer.get(k)]
    detail["signer"] = clip(" / ".join(names), 80)
    if failures:
        detail["failures"] = failures[:6]
    if not accepted:
        detail["note"] = f"{status} manifest: reported, not proof"
    return Signal(
        "c2pa",
        claims_ai=accepted and dst in cfg.ai_source_types,
        detail=detail,
        claims_capture=accepted and dst in cfg.capture_source_types,
    )
