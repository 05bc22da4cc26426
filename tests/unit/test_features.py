"""image_features: schema, and each statistic moving in the expected direction."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image, ImageFilter

from aidetect.data.features import FEATURE_COLUMNS, LOSSLESS_QUALITY, image_features, quality_from_table


def _textured(size: int = 512, seed: int = 0) -> Image.Image:
    """A natural-ish image: smoothed noise plus a gradient, so every statistic is non-trivial."""
    rng = np.random.default_rng(seed)
    noise = rng.random((size, size, 3)) * 255
    ramp = np.linspace(0, 80, size)[None, :, None]
    arr = np.clip(noise * 0.7 + ramp, 0, 255).astype(np.uint8)
    return Image.fromarray(arr).filter(ImageFilter.GaussianBlur(0.8))


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_columns_are_complete_finite_floats() -> None:
    feats = image_features(_textured())
    assert list(feats) == FEATURE_COLUMNS
    assert all(isinstance(v, float) and math.isfinite(v) for v in feats.values())
    for col in ("mean_r", "std_g", "brightness", "saturation", "hf_energy_ratio"):
        assert 0.0 <= feats[col] <= 1.0, col


def test_blur_lowers_high_frequency_energy() -> None:
    img = _textured()
    sharp = image_features(img)["hf_energy_ratio"]
    blurred = image_features(img.filter(ImageFilter.GaussianBlur(4)))["hf_energy_ratio"]
    assert blurred < 0.5 * sharp


def test_flat_image_has_no_high_frequency_energy_and_no_saturation() -> None:
    feats = image_features(Image.new("RGB", (300, 200), (90, 90, 90)))
    assert feats["hf_energy_ratio"] == 0.0
    assert feats["saturation"] == pytest.approx(0.0, abs=1e-6)
    assert feats["std_r"] == pytest.approx(0.0, abs=1e-6)
    assert feats["brightness"] == pytest.approx(90 / 255, abs=1e-3)


@pytest.mark.parametrize("quality", [30, 60, 95])
def test_jpeg_quality_estimate_tracks_the_encoder_setting(quality: int) -> None:
    data = _encode(_textured(256), "JPEG", quality=quality)
    opened = Image.open(io.BytesIO(data))
    # from the decoded JpegImageFile, and from the bytes when the image was converted (tables lost)
    assert image_features(opened)["jpeg_quality"] == pytest.approx(quality, abs=2)
    converted = opened.convert("L").convert("RGB")
    assert image_features(converted, data)["jpeg_quality"] == pytest.approx(quality, abs=2)


def test_low_quality_jpeg_scores_lower_than_high_quality() -> None:
    img = _textured(256)
    q30 = image_features(img, _encode(img, "JPEG", quality=30))["jpeg_quality"]
    q95 = image_features(img, _encode(img, "JPEG", quality=95))["jpeg_quality"]
    assert q30 < 40 < 90 < q95


def test_lossless_formats_get_the_defined_quality() -> None:
    img = _textured(64)
    assert image_features(img)["jpeg_quality"] == LOSSLESS_QUALITY
    assert image_features(img, _encode(img, "PNG"))["jpeg_quality"] == LOSSLESS_QUALITY
    # bytes that claim to be JPEG but are truncated still give a defined value, not an exception
    assert image_features(img, b"\xff\xd8\xff\xe0garbage")["jpeg_quality"] == LOSSLESS_QUALITY


def test_quality_from_table_inverts_ijg_scaling() -> None:
    base = [16, 11, 10, 16, 24, 40, 51, 61] + [12] * 56  # only the sum matters; order does not
    assert quality_from_table(base) < quality_from_table(sorted(v // 2 for v in base)) <= 100.0
    assert quality_from_table([1] * 64) == 100.0
    assert quality_from_table([255] * 64) == pytest.approx(1.0, abs=1.0)


def test_colour_statistics_move_the_right_way() -> None:
    dark = image_features(Image.new("RGB", (64, 64), (40, 40, 40)))
    bright = image_features(Image.new("RGB", (64, 64), (220, 220, 220)))
    red = image_features(Image.new("RGB", (64, 64), (230, 20, 20)))
    assert bright["brightness"] > dark["brightness"]
    assert red["saturation"] > 0.9 > dark["saturation"]
    assert red["mean_r"] > red["mean_g"] and red["mean_r"] > red["mean_b"]
    noisy = image_features(_textured(64))
    assert noisy["std_r"] > dark["std_r"]


def test_size_is_the_received_size_and_other_modes_work() -> None:
    img = _textured(600).crop((0, 0, 600, 333))
    feats = image_features(img)
    assert (feats["width"], feats["height"]) == (600.0, 333.0)
    for mode in ("L", "RGBA", "P", "CMYK"):
        out = image_features(img.convert(mode))
        assert list(out) == FEATURE_COLUMNS and all(math.isfinite(v) for v in out.values()), mode
    tiny = image_features(Image.new("RGB", (1, 1), (255, 0, 0)))
    assert tiny["width"] == 1.0 and tiny["hf_energy_ratio"] == 0.0


def test_downsampling_keeps_statistics_close_to_full_resolution() -> None:
    img = _textured(512)
    full = image_features(img.resize((100, 100), Image.Resampling.BOX))
    small = image_features(img)
    for col in ("mean_r", "mean_g", "mean_b", "brightness"):
        assert small[col] == pytest.approx(full[col], abs=0.01), col


def test_a_needle_image_is_reduced_along_its_long_side_too() -> None:
    """1 x 20M pixels: the statistics run on at most WORK_AXIS_MAX pixels per side, not 240 MB of floats."""
    from aidetect.data import features

    needle = Image.new("RGB", (1, 20_000_000), (200, 100, 50))
    assert features._downsample(needle).size == (1, features.WORK_AXIS_MAX)
    row = features.image_features(needle)
    assert (row["width"], row["height"]) == (1.0, 20_000_000.0)
    assert abs(row["mean_r"] - 200 / 255) < 1e-6 and row["std_r"] < 1e-6
    assert features._downsample(Image.new("RGB", (512, 384))).size == (171, 128)  # ordinary: unchanged
