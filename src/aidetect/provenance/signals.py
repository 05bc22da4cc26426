"""What a provenance reader found: one :class:`Signal` per kind of evidence in a file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# status values in ``detail["status"]``: what the evidence is worth
FOUND = "found"  # unsigned metadata, read as written (XMP, PNG text, EXIF, watermark)
UNREADABLE = "unreadable"  # present but could not be read within the limits: never a claim

MAX_DETAIL_CHARS = 300  # text excerpts in a signal are cut here (prompts can be long)


@dataclass
class Signal:
    """One piece of provenance evidence.

    ``claims_ai``: the evidence states the image was generated and is usable as such (an unreadable or
    unverifiable one never claims). ``claims_capture``: it states a camera capture (only a C2PA manifest
    the policy accepts). ``detail`` always has ``status``.
    """

    kind: str
    claims_ai: bool = False
    detail: dict[str, Any] = field(default_factory=dict)
    claims_capture: bool = False

    @property
    def status(self) -> str:
        return str(self.detail.get("status", FOUND))

    def to_dict(self) -> dict[str, Any]:
        """The V2 ``provenance`` entry: ``{"kind", "claims_ai", "detail"}``."""
        return {"kind": self.kind, "claims_ai": self.claims_ai, "detail": self.detail}

    def reason(self) -> str:
        """One line for a verdict's reasons."""
        extra = ", ".join(f"{k}={v}" for k, v in self.detail.items() if k != "status" and _short(v))
        return f"{self.kind} {self.status}" + (f" ({extra})" if extra else "")


def unreadable(kind: str, why: str) -> Signal:
    return Signal(kind, False, {"status": UNREADABLE, "error": clip(why)})


def clip(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and len(str(value)) <= 80


def to_json(signals: list[Signal]) -> str:
    """One image's ``provenance`` output: a JSON list of signals."""
    return json.dumps([s.to_dict() for s in signals], separators=(",", ":"), ensure_ascii=False)
