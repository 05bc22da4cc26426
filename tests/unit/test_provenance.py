"""Provenance readers and the verdict policy, on fixtures the tests make (tests/helpers/provenance.py)."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import PngImagePlugin

from aidetect.config import load
from aidetect.decision import DecisionSpec
from aidetect.errors import ConfigError
from aidetect.provenance import VerdictConfig, decide, read_provenance, to_json
from aidetect.provenance.containers import read_metadata
from tests.helpers import provenance as fx

SPEC = DecisionSpec(("REAL", "FAKE"), "REAL", 0.5)
LOW, HIGH = np.array([[0.9, 0.1]], np.float32), np.array([[0.2, 0.8]], np.float32)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> fx.TestCA:
    return fx.TestCA.create(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def cfg(ca: fx.TestCA) -> VerdictConfig:
    return load(VerdictConfig, "verdict", overrides={"c2pa_trust_anchors": str(ca.anchors)})


def kinds(signals) -> dict[str, object]:
    return {s.kind: s for s in signals}


def verdict_of(data: bytes, cfg: VerdictConfig, probs: np.ndarray = LOW):
    return decide([read_provenance(data, cfg)], probs, SPEC, cfg)[0]


# -- C2PA ------------------------------------------------------------------------------------------------
def test_trusted_c2pa_ai_claim_is_ai_generated(ca: fx.TestCA, cfg: VerdictConfig) -> None:
    signed = ca.sign(fx.plain_image(), "image/jpeg", "trainedAlgorithmicMedia")
    (sig,) = read_provenance(signed, cfg)
    assert (sig.kind, sig.claims_ai, sig.detail["status"]) == ("c2pa", True, "trusted")
    assert sig.detail["digital_source_type"] == "trainedAlgorithmicMedia"
    assert "aidetect-tests" in sig.detail["claim_generator"]
    v = verdict_of(signed, cfg)
    assert v.verdict == "ai-generated"
    assert v.reasons[0].startswith("c2pa trusted") and "trainedAlgorithmicMedia" in v.reasons[0]


def test_trusted_c2pa_capture_claim_is_camera_capture_even_over_the_detector(ca, cfg) -> None:
    signed = ca.sign(fx.plain_image(fmt="PNG"), "image/png", "digitalCapture")
    (sig,) = read_provenance(signed, cfg)
    assert sig.claims_capture and not sig.claims_ai
    assert verdict_of(signed, cfg, HIGH).verdict == "camera-capture"


def test_c2pa_without_trust_anchor_is_untrusted_and_never_proof(ca, cfg) -> None:
    signed = ca.sign(fx.plain_image(), "image/jpeg", "trainedAlgorithmicMedia")
    no_anchor = load(VerdictConfig, "verdict", overrides={"c2pa_trust_anchors": ""})
    (sig,) = read_provenance(signed, no_anchor)
    assert (sig.detail["status"], sig.claims_ai) == ("untrusted", False)
    assert "signingCredential.untrusted" in sig.detail["failures"]
    v = verdict_of(signed, no_anchor)
    assert v.verdict == "unknown"
    assert any(r.startswith("not deciding: c2pa untrusted") for r in v.reasons)


def test_tampered_c2pa_is_invalid_and_the_detector_decides(ca, cfg) -> None:
    tampered = fx.tamper(ca.sign(fx.plain_image(), "image/jpeg", "digitalCapture"))
    (sig,) = read_provenance(tampered, cfg)
    assert (sig.detail["status"], sig.claims_ai, sig.claims_capture) == ("invalid", False, False)
    assert any("mismatch" in f for f in sig.detail["failures"])
    assert verdict_of(tampered, cfg, HIGH).verdict == "likely-ai"
    assert verdict_of(tampered, cfg, LOW).verdict == "unknown"


def test_expired_c2pa_certificate_is_reported_expired(ca, cfg) -> None:
    signed = ca.sign(fx.plain_image(), "image/jpeg", "trainedAlgorithmicMedia", expires_in_s=1)
    fx.wait_past(1)
    (sig,) = read_provenance(signed, cfg)
    assert (sig.detail["status"], sig.claims_ai) == ("expired", False)
    assert verdict_of(signed, cfg).verdict == "unknown"


def test_truncated_c2pa_manifest_is_unreadable_not_an_error(ca, cfg) -> None:
    signed = ca.sign(fx.plain_image(), "image/jpeg", "trainedAlgorithmicMedia")
    cut = signed[: signed.index(b"c2pa") + 200]
    sig = kinds(read_provenance(cut, cfg))["c2pa"]
    assert sig.detail["status"] == "unreadable" and not sig.claims_ai
    assert verdict_of(cut, cfg, HIGH).verdict == "likely-ai"


# -- IPTC / XMP ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("as_attribute", [True, False])
def test_xmp_digital_source_type_claims_ai(cfg, as_attribute: bool) -> None:
    data = fx.jpeg_with_xmp(fx.xmp_packet("compositeWithTrainedAlgorithmicMedia", as_attribute=as_attribute))
    (sig,) = read_provenance(data, cfg)
    assert (sig.kind, sig.claims_ai) == ("iptc", True)
    assert sig.detail["digital_source_type"] == "compositeWithTrainedAlgorithmicMedia"
    assert verdict_of(data, cfg).verdict == "ai-generated"


def test_unsigned_xmp_capture_claim_is_reported_but_not_camera_capture(cfg) -> None:
    data = fx.jpeg_with_xmp(fx.xmp_packet("digitalCapture"))
    (sig,) = read_provenance(data, cfg)
    assert not sig.claims_ai and not sig.claims_capture
    assert verdict_of(data, cfg, HIGH).verdict == "likely-ai"


def test_xmp_bomb_is_refused_unexpanded(cfg) -> None:
    (sig,) = read_provenance(fx.jpeg_with_xmp(fx.xmp_bomb()), cfg)
    assert (sig.kind, sig.detail["status"]) == ("iptc", "unreadable")
    assert "DTD" in sig.detail["error"]


def test_oversized_xmp_packet_is_unreadable_unparsed(cfg) -> None:
    small = load(VerdictConfig, "verdict", overrides={"xmp_max_bytes": 100})
    (sig,) = read_provenance(fx.jpeg_with_xmp(fx.xmp_packet("trainedAlgorithmicMedia")), small)
    assert sig.detail["status"] == "unreadable" and "exceeds" in sig.detail["error"]


def test_xmp_in_png_itxt_is_read(cfg) -> None:
    data = fx.png_with_text(
        {"XML:com.adobe.xmp": fx.xmp_packet("algorithmicMedia").decode()}, compressed=True
    )
    (sig,) = read_provenance(data, cfg)
    assert (sig.kind, sig.detail["digital_source_type"]) == ("iptc", "algorithmicMedia")


# -- PNG parameters ----------------------------------------------------------------------------------------
def test_a1111_parameters_claim_ai(cfg) -> None:
    (sig,) = read_provenance(fx.png_with_text({"parameters": fx.A1111_PARAMETERS}), cfg)
    assert (sig.kind, sig.claims_ai, sig.detail["keys"]) == ("png-parameters", True, ["parameters"])
    assert sig.detail["excerpt"].startswith("a cat in a hat")


def test_comfyui_prompt_and_workflow_in_compressed_itxt(cfg) -> None:
    data = fx.png_with_text(
        {"prompt": '{"3": {"class_type": "KSampler"}}', "workflow": "{}"}, compressed=True
    )
    (sig,) = read_provenance(data, cfg)
    assert sig.detail["keys"] == ["prompt", "workflow"]


def test_unrelated_png_text_is_no_signal(cfg) -> None:
    assert read_provenance(fx.png_with_text({"Comment": "holiday", "Author": "me"}), cfg) == []


def test_megabytes_of_text_chunks_stop_at_the_budget(cfg) -> None:
    info = PngImagePlugin.PngInfo()
    for i in range(40):
        info.add_text(f"junk{i}", "x" * 100_000)
    data = fx.plain_image(16, "PNG", pnginfo=info)
    (sig,) = read_provenance(data, cfg)
    assert (sig.kind, sig.detail["status"]) == ("png-parameters", "unreadable")
    assert "size limit" in sig.detail["error"]
    assert verdict_of(data, cfg, HIGH).verdict == "likely-ai"


def test_zlib_bomb_in_ztxt_inflates_only_to_the_budget(cfg) -> None:
    bomb = zlib.compress(b"\0" * 20_000_000, 9)  # ~20 KB that would inflate to 20 MB
    body = b"parameters\0\0" + bomb
    chunk = len(body).to_bytes(4, "big") + b"zTXt" + body + zlib.crc32(b"zTXt" + body).to_bytes(4, "big")
    png = fx.plain_image(16, "PNG")
    data = png[:33] + chunk + png[33:]
    meta = read_metadata(data, text_max_bytes=1 << 20, max_chunks=100, xmp_max_bytes=1 << 16)
    assert "size limit" in meta.errors["text"] and "parameters" not in meta.text


def test_truncated_png_keeps_what_came_before(cfg) -> None:
    data = fx.png_with_text({"parameters": fx.A1111_PARAMETERS}, size=64)
    cut = data[: data.index(b"IDAT") + 10]
    (sig,) = read_provenance(cut, cfg)
    assert sig.claims_ai and "truncated" in sig.detail["note"]


# -- EXIF Software ----------------------------------------------------------------------------------------
def test_exif_software_of_a_known_generator(cfg) -> None:
    (sig,) = read_provenance(fx.jpeg_with_software("ComfyUI 0.3.10"), cfg)
    assert (sig.kind, sig.claims_ai, sig.detail["software"]) == ("exif-software", True, "ComfyUI 0.3.10")


def test_exif_software_of_an_editor_is_no_signal(cfg) -> None:
    assert read_provenance(fx.jpeg_with_software("GIMP 2.10.36"), cfg) == []


# -- watermark --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wm_cfg(cfg: VerdictConfig) -> VerdictConfig:
    return load(VerdictConfig, "verdict", overrides={"watermark_enabled": True})


def test_stable_diffusion_watermark_is_found_when_enabled(wm_cfg, cfg) -> None:
    data = fx.watermarked_png()
    (sig,) = read_provenance(data, wm_cfg)
    assert (sig.kind, sig.claims_ai, sig.detail["payload"]) == ("watermark", True, "StableDiffusionV1")
    assert sig.detail["bit_accuracy"] >= 0.9
    assert read_provenance(data, cfg) == []  # off by default: not decoded


def test_unmarked_image_has_no_watermark(wm_cfg) -> None:
    assert read_provenance(fx.plain_image(512, "PNG"), wm_cfg) == []


def test_watermark_decodes_only_a_top_band_of_a_large_image(wm_cfg) -> None:
    from aidetect.provenance.watermark import top_band

    assert top_band(4000, 3000, wm_cfg) == 256  # 1 Mpx budget / 4000 px wide, whole rows, multiple of 8
    assert top_band(512, 512, wm_cfg) == 512


def test_tiny_image_is_refused_for_the_watermark(wm_cfg) -> None:
    (sig,) = read_provenance(fx.plain_image(32, "PNG"), wm_cfg)
    assert (sig.kind, sig.detail["status"]) == ("watermark", "unreadable")
    assert "smaller than 256" in sig.detail["error"]


# -- robustness and policy ---------------------------------------------------------------------------------
def test_hostile_and_truncated_files_never_raise(ca, cfg, wm_cfg) -> None:
    samples = [
        ca.sign(fx.plain_image(), "image/jpeg", "trainedAlgorithmicMedia"),
        fx.jpeg_with_xmp(fx.xmp_packet("trainedAlgorithmicMedia")),
        fx.png_with_text({"parameters": fx.A1111_PARAMETERS}, compressed=True),
        fx.jpeg_with_software("Midjourney"),
        b"",
        b"\x89PNG\r\n\x1a\n" + b"\xff" * 40,
        b"\xff\xd8\xff\xe1\xff\xff" + b"c2pa jumb" * 10,
        b"RIFF\x10\x00\x00\x00WEBPXMP \xff\xff\xff\x7f",
    ]
    rng = np.random.default_rng(0)
    for data in samples:
        for cut in {len(data), *rng.integers(0, max(len(data), 1), 12).tolist()}:
            for signal in read_provenance(data[:cut], wm_cfg):
                assert signal.status in {"found", "trusted", "untrusted", "expired", "invalid", "unreadable"}
                assert isinstance(to_json([signal]), str)


def test_pixels_input_falls_back_to_the_detector(cfg) -> None:
    verdicts = decide(None, np.vstack([LOW, HIGH]), SPEC, cfg)
    assert [v.verdict for v in verdicts] == ["unknown", "likely-ai"]
    assert "provenance not read" in verdicts[0].reasons[-1]
    assert verdicts[1].reasons[0] == "detector: fake score 0.800 >= threshold 0.5"


def test_policy_lists_limit_which_kinds_decide(cfg) -> None:
    only_c2pa = load(VerdictConfig, "verdict", overrides={"ai_signal_kinds": ["c2pa"]})
    data = fx.png_with_text({"parameters": fx.A1111_PARAMETERS})
    assert verdict_of(data, only_c2pa).verdict == "unknown"
    assert verdict_of(data, cfg).verdict == "ai-generated"


def test_provenance_off_reads_nothing(cfg) -> None:
    off = load(VerdictConfig, "verdict", overrides={"enabled": False})
    assert read_provenance(fx.png_with_text({"parameters": "x"}), off) == []


def test_bad_policy_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="c2pa_accept"):
        load(VerdictConfig, "verdict", overrides={"c2pa_accept": ["sure"]})
    with pytest.raises(ConfigError, match="ai_signal_kinds"):
        load(VerdictConfig, "verdict", overrides={"ai_signal_kinds": ["vibes"]})


def test_provenance_json_shape(cfg) -> None:
    out = json.loads(to_json(read_provenance(fx.jpeg_with_software("DALL-E 3"), cfg)))
    assert out == [
        {"kind": "exif-software", "claims_ai": True, "detail": {"status": "found", "software": "DALL-E 3"}}
    ]


def test_huge_malformed_manifest_is_unreadable(cfg) -> None:
    """Fifty 64 KB APP11 segments of junk that look like a JUMBF manifest store (3 MB)."""
    junk = np.random.default_rng(1).integers(0, 256, 64_000, dtype=np.uint8).tobytes()
    segments = []
    for i in range(50):
        body = (
            b"JP\x00\x01"
            + (i + 1).to_bytes(4, "big")
            + (65_000).to_bytes(4, "big")
            + b"jumb"
            + bytes(8)
            + b"c2pa"
            + junk
        )
        segments.append(b"\xff\xeb" + (len(body) + 2).to_bytes(2, "big") + body)
    jpg = fx.plain_image()
    data = jpg[:2] + b"".join(segments) + jpg[2:]
    (sig,) = read_provenance(data, cfg)
    assert (sig.kind, sig.detail["status"], sig.claims_ai) == ("c2pa", "unreadable", False)
    small = load(VerdictConfig, "verdict", overrides={"c2pa_max_bytes": 1_000_000})
    (sig,) = read_provenance(data, small)
    assert "exceeds c2pa_max_bytes" in sig.detail["error"]
