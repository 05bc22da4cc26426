"""Image transforms on PIL images, applied before the shared preprocessing (``aidetect.data.imaging``).

The robustness transforms (JPEG re-encoding, blur, down- and up-scaling) are applied to every class
with the same probabilities, so a model cannot learn that one class is, say, more compressed. The same
functions make the perturbation slices of the evaluation.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

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


def limit_side(img: Image.Image, longest: int) -> Image.Image:
    """Down-scale (bilinear) so the longest side is at most ``longest`` px; smaller images are kept."""
    w, h = img.size
    if max(w, h) <= longest:
        return img
    f = longest / max(w, h)
    return img.resize((max(1, round(w * f)), max(1, round(h * f))), Image.Resampling.BILINEAR)


def colour_jitter(img: Image.Image, factors: tuple[float, float, float]) -> Image.Image:
    """Brightness, contrast and saturation multiplied by ``factors`` (1 = unchanged)."""
    enhancers = (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color)
    for enhancer, f in zip(enhancers, factors, strict=True):
        if f != 1.0:
            img = enhancer(img).enhance(float(f))
    return img


def rotate(img: Image.Image, degrees: float) -> Image.Image:
    """Rotate about the centre (bilinear, same size); the corners are filled from the mirrored image."""
    if degrees == 0:
        return img
    w, h = img.size
    pad = math.ceil(max(w, h) * 0.21)  # covers the corners of any rotation of the original frame
    a = np.pad(np.asarray(img), ((pad, pad), (pad, pad), (0, 0)), mode="symmetric")
    turned = Image.fromarray(a).rotate(float(degrees), Image.Resampling.BILINEAR)
    return turned.crop((pad, pad, pad + w, pad + h))


def mask_patches(img: Image.Image, ratio: float, patch: int, rng: np.random.Generator) -> Image.Image:
    """Set random ``patch`` px squares (about ``ratio`` of the image) to mid-grey."""
    a = np.array(img)
    h, w = a.shape[:2]
    gh, gw = max(1, h // patch), max(1, w // patch)
    count = round(ratio * gh * gw)
    for cell in rng.choice(gh * gw, size=min(count, gh * gw), replace=False):
        y, x = divmod(int(cell), gw)
        a[y * patch : (y + 1) * patch, x * patch : (x + 1) * patch] = 128
    return Image.fromarray(a)


_QUARTER_TURNS = (None, Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270)


class Augmenter:
    """Random flips, turns, shifts and robustness transforms; randomness comes from the caller's generator.

    During the first ``cfg.clean_epochs`` epochs (the dataset passes its epoch through :meth:`set_epoch`)
    only the lossless flips and quarter turns apply.
    """

    def __init__(self, cfg: AugmentConfig) -> None:
        self.cfg = cfg
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __call__(self, img: Image.Image, rng: np.random.Generator) -> Image.Image:
        c = self.cfg
        if c.hflip and rng.random() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if c.dihedral:
            turn = _QUARTER_TURNS[int(rng.integers(4))]
            if turn is not None:
                img = img.transpose(turn)
        if self.epoch < c.clean_epochs:
            return img
        if c.translate_px:
            limit = min(c.translate_px, min(img.size) - 1)
            dx, dy = (int(v) for v in rng.integers(-limit, limit + 1, size=2))
            img = translate(img, dx, dy)
        if rng.random() < c.rotate_p:
            img = rotate(img, rng.uniform(-c.rotate_degrees, c.rotate_degrees))
        if rng.random() < c.rescale_p:
            img = rescale(img, rng.uniform(*c.rescale), back=c.rescale_back)
        if rng.random() < c.blur_p:
            img = blur(img, rng.uniform(*c.blur_radius))
        if rng.random() < c.jitter_p:
            img = colour_jitter(img, tuple(rng.uniform(1 - c.jitter, 1 + c.jitter, size=3)))
        if rng.random() < c.mask_p:
            img = mask_patches(img, rng.uniform(0, c.mask_ratio), c.mask_patch, rng)
        if rng.random() < c.jpeg_p:  # last: an upload is compressed after everything else happened to it
            img = jpeg_reencode(img, int(rng.integers(c.jpeg_quality[0], c.jpeg_quality[1] + 1)))
        return img
