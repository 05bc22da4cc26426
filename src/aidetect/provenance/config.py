"""The verdict policy and the provenance readers' limits (``configs/verdict.yaml``, env
``AIDETECT_VERDICT__<FIELD>``), loaded with ``aidetect.config.load(VerdictConfig, "verdict")``."""

from __future__ import annotations

from dataclasses import dataclass, field

from aidetect.errors import ConfigError

KINDS = ("c2pa", "iptc", "png-parameters", "exif-software", "watermark")
C2PA_STATUSES = ("trusted", "untrusted", "expired", "invalid")

# IPTC digital source types (http://cv.iptc.org/newscodes/digitalsourcetype/<code>)
AI_SOURCE_TYPES = [
    "trainedAlgorithmicMedia",
    "compositeWithTrainedAlgorithmicMedia",
    "algorithmicMedia",
    "compositeSynthetic",
]
CAPTURE_SOURCE_TYPES = ["digitalCapture", "computationalCapture"]
GENERATOR_SOFTWARE = [
    "stable diffusion",
    "automatic1111",
    "comfyui",
    "invokeai",
    "novelai",
    "midjourney",
    "dall-e",
    "dall·e",
    "firefly",
    "imagen",
    "leonardo.ai",
    "fooocus",
    "diffusers",
]
PNG_PARAMETER_KEYS = ["parameters", "prompt", "workflow", "sd-metadata", "invokeai_metadata", "Dream"]


@dataclass
class WatermarkPayload:
    """A known invisible-watermark payload: its name and its bytes as text."""

    name: str = ""
    text: str = ""


@dataclass
class VerdictConfig:
    """Which signals decide a verdict, and how much each reader may read."""

    enabled: bool = True  # provenance readers on; off: every verdict comes from the detector
    # kinds whose AI claim makes an image "ai-generated" (a kind not listed is still reported)
    ai_signal_kinds: list[str] = field(default_factory=lambda: list(KINDS))
    # C2PA statuses whose claims count as proof (AI or capture); other manifests are reported, never proof
    c2pa_accept: list[str] = field(default_factory=lambda: ["trusted"])
    c2pa_trust_anchors: str = ""  # PEM file of extra root CAs (added to the SDK's own anchors)
    c2pa_max_bytes: int = 64 * 1024 * 1024  # larger files are not handed to the C2PA SDK
    ai_source_types: list[str] = field(default_factory=lambda: list(AI_SOURCE_TYPES))
    capture_source_types: list[str] = field(default_factory=lambda: list(CAPTURE_SOURCE_TYPES))
    xmp_max_bytes: int = 256 * 1024  # an XMP packet beyond this is reported unreadable, not parsed
    png_parameter_keys: list[str] = field(default_factory=lambda: list(PNG_PARAMETER_KEYS))
    png_text_max_bytes: int = 1024 * 1024  # all text chunks of one PNG together, after inflating
    png_max_chunks: int = 4096  # chunk headers walked per PNG
    generator_software: list[str] = field(default_factory=lambda: list(GENERATOR_SOFTWARE))
    # DWT-DCT invisible watermark (the Stable Diffusion reference scripts): decoded only when enabled
    watermark_enabled: bool = False
    watermark_payloads: list[WatermarkPayload] = field(
        default_factory=lambda: [WatermarkPayload("StableDiffusionV1", "StableDiffusionV1")]
    )
    watermark_min_side: int = 256  # smaller images cannot carry the mark reliably: not decoded
    watermark_max_pixels: int = 1024 * 1024  # decode at most this many pixels (whole top rows)
    watermark_min_bit_accuracy: float = 0.8  # share of payload bits that must match (chance: 0.5 +- 0.04)

    def validate(self) -> None:
        for name, allowed in (("ai_signal_kinds", KINDS), ("c2pa_accept", C2PA_STATUSES)):
            bad = [v for v in getattr(self, name) if v not in allowed]
            if bad:
                raise ConfigError(f"{name}: {bad[0]!r} is not one of {list(allowed)}")
        for name in ("c2pa_max_bytes", "xmp_max_bytes", "png_text_max_bytes", "png_max_chunks"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1")
        if self.watermark_min_side < 64 or self.watermark_max_pixels < self.watermark_min_side**2:
            raise ConfigError("watermark_min_side: must be >= 64 and fit in watermark_max_pixels")
        if not 0.5 < self.watermark_min_bit_accuracy <= 1.0:
            raise ConfigError("watermark_min_bit_accuracy: must be in (0.5, 1]")
        for i, p in enumerate(self.watermark_payloads):
            if not p.name or not p.text:
                raise ConfigError(f"watermark_payloads[{i}]: needs a name and a text")
