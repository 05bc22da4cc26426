"""Hostile images: formats outside the accepted set, and aspect ratios that once amplified the resize."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import EpsImagePlugin, Image

from aidetect.data import imaging

EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n"


def _encoded(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def test_eps_is_refused_before_its_plugin_runs(monkeypatch) -> None:
    assert Image.open(io.BytesIO(EPS)).format == "EPS"  # Pillow alone would open it (and run gs to load)
    calls: list[str] = []
    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", lambda self: calls.append("eps"))
    with pytest.raises(imaging.ImageDecodeError, match="not a recognised image format") as err:
        imaging.open_image(EPS)
    assert err.value.reason == "corrupt" and calls == []


@pytest.mark.parametrize("fmt", imaging.ACCEPTED_FORMATS)
def test_every_accepted_format_still_decodes(fmt: str) -> None:
    img = Image.fromarray(np.full((12, 20, 3), 90, np.uint8))
    out = imaging.model_input_from_bytes(_encoded(img, fmt), 8)
    assert out.shape == (3, 8, 8) and np.isfinite(out).all()


def _resize_then_crop(img: Image.Image, size: int) -> Image.Image:
    """The old rule, kept here as the reference: resize the whole image, then crop its centre."""
    w, h = img.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    big = img.resize((nw, nh), Image.Resampling.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    return big.crop((left, top, left + size, top + size))


@pytest.mark.parametrize(("w", "h", "size"), [(640, 480, 224), (100, 37, 32), (17, 9, 16), (1, 50, 32)])
def test_cropping_first_gives_the_pixels_of_resize_then_crop(w: int, h: int, size: int) -> None:
    pixels = np.random.default_rng(w * h).integers(0, 256, (h, w, 3), dtype=np.uint8)
    img = Image.fromarray(pixels)
    new = np.asarray(imaging.resize_center_crop(img, size), np.int16)
    old = np.asarray(_resize_then_crop(img, size), np.int16)
    assert new.shape == (size, size, 3)
    assert np.abs(new - old).max() <= 1 and (new != old).mean() < 0.03  # float rounding only


def test_a_needle_image_costs_memory_by_output_size_not_by_aspect_ratio() -> None:
    """1 x 100000 px (a few hundred bytes of PNG): resize-then-crop allocated 32 x 3.2M x 3 ~ 300 MB."""
    script = textwrap.dedent(
        """
        import io, json, resource
        from PIL import Image
        from aidetect.data import imaging
        buf = io.BytesIO()
        Image.new("RGB", (1, 100_000), (200, 10, 10)).save(buf, "PNG")
        data = buf.getvalue()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out = imaging.model_input_from_bytes(data, 32)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"bytes": len(data), "shape": out.shape, "grown_mb": (after - before) // 1024}))
        """
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    got = json.loads(res.stdout)
    assert got["shape"] == [3, 32, 32] and got["bytes"] < 2000
    assert got["grown_mb"] < 50, got
