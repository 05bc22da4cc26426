"""Model-input decoding: reduced-scale JPEG decode, and what it must keep equal to a full decode."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from aidetect.data import imaging

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def _photo(w: int, h: int, fmt: str = "JPEG") -> bytes:
    """A smooth gradient with a little texture: something a DCT-scaled decode must keep close."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(0)
    base = np.stack([xx / w * 200, yy / h * 200, (xx + yy) / (w + h) * 255], axis=-1)
    pixels = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return buf.getvalue()


@pytest.mark.parametrize(
    ("w", "h", "size", "expected"), [(512, 512, 32, (64, 64)), (512, 384, 64, (128, 96))]
)
def test_large_jpeg_decodes_at_the_coarsest_scale_that_covers_the_input(w, h, size, expected) -> None:
    img = imaging.decode_for_model(_photo(w, h), size)
    assert img.size == expected and img.mode == "RGB"
    assert min(img.size) >= size  # never below the model input: the resize only shrinks


def test_small_jpeg_and_other_formats_decode_fully() -> None:
    assert imaging.decode_for_model(_photo(40, 40), 32).size == (40, 40)
    assert imaging.decode_for_model(_photo(512, 512, "PNG"), 32).size == (512, 512)


def test_reduced_decode_gives_nearly_the_full_decode_model_input() -> None:
    data = _photo(512, 512)
    reduced = imaging.model_input_from_bytes(data, 32, MEAN, STD)
    full = imaging.to_model_input(imaging.decode_rgb(data), 32, MEAN, STD)
    assert reduced.shape == full.shape == (3, 32, 32)
    # in units of pixel values: the DCT-domain downscale and a bilinear resize agree within a few levels
    assert float(np.abs(reduced - full).mean()) * 0.25 * 255 < 3.0


def test_reduced_decode_keeps_the_limits_and_errors() -> None:
    with pytest.raises(imaging.ImageDecodeError) as err:
        imaging.decode_for_model(_photo(512, 512), 32, max_pixels=100_000)
    assert err.value.reason == "too_large"
    truncated = _photo(512, 512)[:3000]
    with pytest.raises(imaging.ImageDecodeError) as err:
        imaging.decode_for_model(truncated, 32)
    assert err.value.reason == "corrupt"
    with pytest.raises(imaging.ImageDecodeError):
        imaging.decode_for_model(b"not an image", 32)
