"""The explainer's pixel limit bounds a whole request: headers are read before any image is decoded."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from aidetect.data import imaging
from aidetect.model import explain


def _b64_png(w: int, h: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (10, 200, 30)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_many_images_under_the_per_image_limit_are_refused_as_a_request(monkeypatch) -> None:
    decoded: list[int] = []
    real = imaging.decode_rgb
    monkeypatch.setattr(imaging, "decode_rgb", lambda data, mp: decoded.append(1) or real(data, mp))
    body = {"instances": [_b64_png(100, 60)] * 3}  # 6,000 px each, 18,000 in all
    with pytest.raises(
        ValueError, match=r"instances: 18000 pixels up to instances\[2\], above the limit 15000"
    ):
        explain.decode_instances(body, max_pixels=15_000)
    assert decoded == []  # refused from the headers alone
    images, _ = explain.decode_instances({"instances": [_b64_png(100, 60)] * 2}, max_pixels=15_000)
    assert [img.size for img, _ in images] == [(100, 60), (100, 60)]


def test_a_bad_instance_is_named_before_anything_is_decoded() -> None:
    with pytest.raises(ValueError, match=r"instances\[1\]: not valid base64"):
        explain.decode_instances({"instances": [_b64_png(4, 4), "%%%"]}, max_pixels=100)
    with pytest.raises(ValueError, match=r"instances\[0\]: image is 20x20 = 400 pixels, above the limit 100"):
        explain.decode_instances({"instances": [_b64_png(20, 20)]}, max_pixels=100)
