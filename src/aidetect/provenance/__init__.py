"""Provenance signals beside the detector (no torch: this runs in the serving path).

:func:`read_provenance` reads what an encoded image says about itself (C2PA content credentials,
IPTC/XMP digital source type, generation parameters in PNG text chunks, EXIF ``Software`` of known
generators, the DWT-DCT invisible watermark); :func:`decide` fuses those signals with the detector's
probabilities into one verdict per image, by the policy in ``configs/verdict.yaml``.
"""

from aidetect.provenance.config import VerdictConfig
from aidetect.provenance.reader import read_provenance
from aidetect.provenance.signals import Signal, to_json
from aidetect.provenance.verdict import VERDICTS, Verdict, decide

__all__ = ["VERDICTS", "Signal", "Verdict", "VerdictConfig", "decide", "read_provenance", "to_json"]
