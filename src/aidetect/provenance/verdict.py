"""One verdict per image from its provenance signals and the detector's probabilities.

The policy (docs/serving.md, "Verdict policy"), first rule that holds wins:

1. ``ai-generated``: a signal of a kind in ``ai_signal_kinds`` claims the image was generated;
2. ``camera-capture``: a C2PA manifest the policy accepts (``c2pa_accept``) claims a capture;
3. ``likely-ai``: the detector decides a fake class (:class:`aidetect.decision.DecisionSpec`, the one
   decision rule: fake score at or over the model's threshold);
4. ``unknown``: none of these (no signal, and the detector below its threshold).

Signals that are unreadable or unverifiable never decide; they appear in the reasons.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aidetect.decision import DecisionSpec
from aidetect.provenance.config import VerdictConfig
from aidetect.provenance.signals import Signal

AI_GENERATED, CAMERA_CAPTURE, LIKELY_AI, UNKNOWN = "ai-generated", "camera-capture", "likely-ai", "unknown"
VERDICTS = (AI_GENERATED, CAMERA_CAPTURE, LIKELY_AI, UNKNOWN)


@dataclass(frozen=True)
class Verdict:
    verdict: str
    reasons: tuple[str, ...]

    def reasons_json(self) -> str:
        return json.dumps(list(self.reasons), ensure_ascii=False)


def decide(
    signals: Sequence[Sequence[Signal]] | None, probs: np.ndarray, spec: DecisionSpec, cfg: VerdictConfig
) -> list[Verdict]:
    """A verdict per row of ``probs`` ``[N, C]``; ``signals`` is per image, or None (no encoded bytes:
    ``pixels``/``tensor`` input), when the detector decides alone."""
    fake = spec.is_fake(spec.decide(probs))
    scores = spec.fake_score(probs)
    per_image = signals if signals is not None else [[] for _ in range(len(fake))]
    out = []
    for found, is_fake, score in zip(per_image, fake, scores, strict=True):
        op = ">=" if is_fake else "<"
        detector = f"detector: fake score {float(score):.3f} {op} threshold {spec.threshold:g}"
        out.append(_one(list(found), bool(is_fake), detector, cfg, signals is None))
    return out


def _one(found: list[Signal], is_fake: bool, detector: str, cfg: VerdictConfig, no_bytes: bool) -> Verdict:
    claims = [s for s in found if s.claims_ai and s.kind in cfg.ai_signal_kinds]
    capture = [s for s in found if s.claims_capture]
    rest = [s for s in found if s not in claims and s not in capture]
    if claims:
        verdict, deciding = AI_GENERATED, claims
    elif capture:
        verdict, deciding = CAMERA_CAPTURE, capture
    else:
        verdict, deciding = (LIKELY_AI if is_fake else UNKNOWN), []
    reasons = [s.reason() for s in deciding]
    reasons.append(detector)
    reasons += [f"not deciding: {s.reason()}" for s in rest]
    if no_bytes:
        reasons.append("provenance not read: the request carried decoded pixels, not the encoded file")
    return Verdict(verdict, tuple(reasons))
