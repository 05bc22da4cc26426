"""Decode images safely and turn them into model input, with numpy and Pillow only.

Training, evaluation, the ONNX parity check and the torch-free server all turn encoded images into
model input through :func:`model_input_from_bytes` (:func:`decode_for_model`, then
:func:`to_model_input`), so preprocessing is identical everywhere.
"""

from __future__ import annotations

import functools
import io
import warnings
from collections.abc import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from aidetect.errors import DataError

DEFAULT_MAX_PIXELS = 40_000_000  # ~ 6300 x 6300; larger images are refused before decoding
# The only Pillow plugins ever asked to identify bytes: the formats the platform ingests and serves.
# Everything else (EPS would run Ghostscript, plus PSD, ICNS, FITS, ...) is refused unidentified.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageDecodeError(DataError):
    """The bytes are not a decodable image, or the image is too large."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason  # short machine-readable reason: corrupt, too_large, unsupported


def open_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open ``data`` lazily and check its declared size *before* decoding pixels.

    Only :data:`ACCEPTED_FORMATS` are tried, so no other Pillow plugin ever parses untrusted bytes.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        accepted = ", ".join(ACCEPTED_FORMATS)
        raise ImageDecodeError(f"not a recognised image format (accepted: {accepted})", "corrupt") from None
    except (OSError, ValueError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"not a decodable image: {exc}", "corrupt") from None
    except Image.DecompressionBombError:
        raise ImageDecodeError("image exceeds the pixel limit", "too_large") from None
    w, h = img.size
    if w <= 0 or h <= 0:
        raise ImageDecodeError(f"image has an empty size {w}x{h}", "corrupt")
    if w * h > max_pixels:
        msg = f"image is {w}x{h} = {w * h} pixels, above the limit {max_pixels}"
        raise ImageDecodeError(msg, "too_large")
    return img


def load_rgb(img: Image.Image) -> Image.Image:
    """Decode the pixels of an opened image as RGB, raising :class:`ImageDecodeError` on failure."""
    try:
        img.load()
        return img.convert("RGB") if img.mode != "RGB" else img
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageDecodeError(f"image data is corrupt: {exc}", "corrupt") from None


def decode_rgb(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Fully decode ``data`` into an RGB image, raising :class:`ImageDecodeError` on failure."""
    return load_rgb(open_image(data, max_pixels))


def decode_for_model(data: bytes, size: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode ``data`` only as finely as a ``size`` px model input needs (RGB).

    A JPEG is decoded at the coarsest DCT scale (1/2, 1/4 or 1/8, libjpeg's scaled IDCT through
    Pillow's ``draft``) that keeps both sides at least ``size``: a 512 px JPEG for a 32 px model decodes
    to 64 px, about 20x less work than a full decode followed by a resize. Other formats, and JPEGs
    already near ``size``, decode fully. Training, evaluation, the ONNX parity check and the server all
    decode model input through here, so they see the same pixels; image statistics (drift features)
    use :func:`decode_rgb`, the image as received.
    """
    img = open_image(data, max_pixels)
    if img.format == "JPEG":
        try:
            img.draft("RGB", (size, size))
        except (OSError, ValueError) as exc:
            raise ImageDecodeError(f"image data is corrupt: {exc}", "corrupt") from None
    return load_rgb(img)


def resize_center_crop(img: Image.Image, size: int) -> Image.Image:
    """Resize the shorter side to ``size`` (bilinear) and crop the centre to ``size`` x ``size``.

    Only the centre region is resampled (Pillow's ``box``), straight to ``size`` x ``size``: the
    whole image is never resized first, so a 1 x 100000 image does not become a 32 x 3.2M
    intermediate. The cost is bounded by the crop region and the output, whatever the aspect ratio.
    """
    w, h = img.size
    if (w, h) == (size, size):
        return img
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    left, top = (nw - size) // 2, (nh - size) // 2
    sx, sy = w / nw, h / nh  # the crop, in source coordinates, of the resize-then-crop it replaces
    box = (left * sx, top * sy, (left + size) * sx, (top + size) * sy)
    return img.resize((size, size), Image.Resampling.BILINEAR, box=box)


@functools.lru_cache(maxsize=32)
def _affine(mean: tuple[float, ...], std: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(scale, offset)``, float32 ``[3, 1, 1]``, so that ``p * scale + offset`` normalises."""
    m, s = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    scale = (1.0 / (255.0 * s)).astype(np.float32)[:, None, None]
    offset = (-m / s).astype(np.float32)[:, None, None]
    scale.flags.writeable = offset.flags.writeable = False  # shared by every call
    return scale, offset


def normalize(
    pixels: np.ndarray, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> np.ndarray:
    """uint8 ``[..., H, W, 3]`` -> float32 ``[..., 3, H, W]``, scaled to [0, 1] then standardised.

    One fused multiply-add, ``p * 1/(255 std) - mean/std``, written straight into the channel-first
    output (this runs once per served image: a chain of numpy temporaries cost more than the decode).
    """
    scale, offset = _affine(tuple(mean), tuple(std))
    chw = np.moveaxis(pixels, -1, -3)
    out = np.empty(chw.shape, np.float32)
    np.multiply(chw, scale, out=out)
    out += offset
    return out


def to_model_input(
    img: Image.Image,
    size: int,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> np.ndarray:
    """An RGB image -> float32 ``[3, size, size]`` ready for the network."""
    rgb = img.convert("RGB") if img.mode != "RGB" else img
    return normalize(np.asarray(resize_center_crop(rgb, size), dtype=np.uint8), mean, std)


def model_input_from_bytes(
    data: bytes,
    size: int,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Encoded image -> float32 ``[3, size, size]``: :func:`decode_for_model` then :func:`to_model_input`."""
    return to_model_input(decode_for_model(data, size, max_pixels), size, mean, std)


def inspect_image(
    data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, verify: bool = True
) -> dict[str, object]:
    """``{width, height, format, mode}`` from the header; with ``verify`` the pixels are decoded too.

    Raises :class:`ImageDecodeError` for anything a consumer could not decode.
    """
    img = open_image(data, max_pixels)
    info: dict[str, object] = {
        "width": img.width,
        "height": img.height,
        "format": img.format,
        "mode": img.mode,
    }
    if verify:
        try:
            img.load()
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageDecodeError(f"image data is corrupt: {exc}", "corrupt") from None
    return info
