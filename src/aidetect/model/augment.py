"""Image transforms on PIL images, applied before the shared preprocessing (``aidetect.data.imaging``).

The robustness transforms (JPEG re-encoding, blur, down- and up-scaling) are applied to every class
with the same probabilities, so a model cannot learn that one class is, say, more compressed. The same
functions make the perturbation slices of the evaluation.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

from aidetect.data.imaging import decode_rgb
from aidetect.model.config import AugmentConfig


def jpeg_reencode(img: Image.Image, quality: int) -> Image.Image:
    """Encode as JPEG at ``quality`` and decode again."""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=int(quality))
    return decode_rgb(buf.getvalue())


def blur(img: Image.Image, radius: float) -> Image.Image:
    return img.filter(ImageFilter.GaussianBlur(radius=float(radius)))


def rescale(img: Image.Image, factor: float, back: bool = True) -> Image.Image:
    """Downscale by ``factor`` (bilinear); with ``back`` scale up to the original size again."""
    w, h = img.size
    small = img.resize((max(1, round(w * factor)), max(1, round(h * factor))), Image.Resampling.BILINEAR)
    return small.resize((w, h), Image.Resampling.BILINEAR) if back else small


def translate(img: Image.Image, dx: int, dy: int) -> Image.Image:
    """Shift by (dx, dy) px; the pixels shifted in are the image mirrored at its border."""
    if dx == 0 and dy == 0:
        return img
    a = np.asarray(img)
    pad = max(abs(dx), abs(dy))
    padded = np.pad(a, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    h, w = a.shape[:2]
    return Image.fromarray(padded[pad - dy : pad - dy + h, pad - dx : pad - dx + w])


_QUARTER_TURNS = (None, Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270)


class Augmenter:
    """Random flips, turns, shifts and robustness transforms; randomness comes from the caller's generator."""

    def __init__(self, cfg: AugmentConfig) -> None:
        self.cfg = cfg

    def __call__(self, img: Image.Image, rng: np.random.Generator) -> Image.Image:
        c = self.cfg
        if c.hflip and rng.random() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if c.dihedral:
            turn = _QUARTER_TURNS[int(rng.integers(4))]
            if turn is not None:
                img = img.transpose(turn)
        if c.translate_px:
            limit = min(c.translate_px, min(img.size) - 1)
            dx, dy = (int(v) for v in rng.integers(-limit, limit + 1, size=2))
            img = translate(img, dx, dy)
        if rng.random() < c.rescale_p:
            img = rescale(img, rng.uniform(*c.rescale))
        if rng.random() < c.blur_p:
            img = blur(img, rng.uniform(*c.blur_radius))
        if rng.random() < c.jpeg_p:
            img = jpeg_reencode(img, int(rng.integers(c.jpeg_quality[0], c.jpeg_quality[1] + 1)))
        return img
