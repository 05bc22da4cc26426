"""Cheap image statistics shared by the training reference and the serving inference log.

numpy + Pillow only (the server has no torch). Colour statistics and the frequency statistic are
computed on a box-downsampled copy (shorter side at most :data:`WORK_SIZE`), so a 512 px image costs a
few hundred microseconds. Every value is a plain ``float`` and every column is always present, so a
reference profile and a logged window have the same schema by construction.

Columns (:data:`FEATURE_COLUMNS`):

- ``mean_r``, ``mean_g``, ``mean_b``, ``std_r``, ``std_g``, ``std_b``: per-channel statistics in [0, 1].
- ``brightness``: mean Rec. 601 luma in [0, 1].
- ``saturation``: mean HSV saturation ``(max - min) / max`` in [0, 1].
- ``hf_energy_ratio``: high-frequency share of the luma energy (Laplacian energy over variance,
  normalised to [0, 1]). Blur and strong compression lower it; noise raises it.
- ``jpeg_quality``: the IJG quality (1..100) that best explains the luma quantization table when the
  image is a JPEG; :data:`LOSSLESS_QUALITY` (100) for lossless formats and raw pixels.
- ``width``, ``height``: size of the image as received, in pixels.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

FEATURE_COLUMNS: list[str] = [
    "mean_r",
    "mean_g",
    "mean_b",
    "std_r",
    "std_g",
    "std_b",
    "brightness",
    "saturation",
    "hf_energy_ratio",
    "jpeg_quality",
    "width",
    "height",
]

WORK_SIZE = 128  # shorter side of the downsampled copy the statistics are computed on
WORK_AXIS_MAX = 16 * WORK_SIZE  # longest side of that copy, reached only by aspect ratios beyond 8:1
LOSSLESS_QUALITY = 100.0  # jpeg_quality reported for images that carry no quantization table
_LAPLACIAN_GAIN = 64.0  # peak |H(f)|^2 of the 4-neighbour Laplacian (at the Nyquist corner)

# The IJG (libjpeg) reference luminance quantization table, Annex K of ITU-T T.81.
_IJG_LUMA = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.int64,
).ravel()


def _ijg_table_sums() -> np.ndarray:
    """Sum of the IJG luma table libjpeg writes at each quality 1..100 (index q - 1)."""
    q = np.arange(1, 101)
    scale = np.where(q < 50, 5000 // q, 200 - 2 * q)
    tables = np.clip((_IJG_LUMA[None, :] * scale[:, None] + 50) // 100, 1, 255)
    return tables.sum(axis=1)


_IJG_SUMS = _ijg_table_sums()

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _downsample(img: Image.Image) -> Image.Image:
    """Box-reduce by an integer factor so the shorter side lands in ``[WORK_SIZE, 2 * WORK_SIZE)``.

    An extreme aspect ratio is then reduced along its long side too, to at most :data:`WORK_AXIS_MAX`
    pixels, so a 1 x 20M image costs no more than an ordinary one (ordinary images never reach it).
    """
    factor = min(img.size) // WORK_SIZE
    img = img.reduce(factor) if factor >= 2 else img
    fx, fy = (-(-side // WORK_AXIS_MAX) for side in img.size)
    return img.reduce((fx, fy)) if fx > 1 or fy > 1 else img


def hf_energy_ratio(luma: np.ndarray) -> float:
    """High-frequency share of the energy of ``luma`` (2-D float), in [0, 1].

    The energy of the 4-neighbour Laplacian over the variance, scaled by the Laplacian's peak gain:
    by Parseval this is the image's spectrum weighted by ``|H(f)|^2 / 64``, which is 0 at DC and 1 at
    the Nyquist corner (a smooth high-pass instead of an FFT and a hard cutoff: ~10x cheaper).
    Blur and heavy compression lower it; noise and sharp detail raise it.
    """
    if min(luma.shape) < 3:
        return 0.0
    centre = luma[1:-1, 1:-1]
    variance = float(centre.var())
    if variance <= 1e-12:  # a flat image has no detail to speak of
        return 0.0
    lap = 4.0 * centre - luma[:-2, 1:-1] - luma[2:, 1:-1] - luma[1:-1, :-2] - luma[1:-1, 2:]
    return float(min(1.0, float(np.mean(lap * lap)) / (_LAPLACIAN_GAIN * variance)))


def quality_from_table(table: list[int] | tuple[int, ...]) -> float:
    """The IJG quality (1..100) whose luma table sum is nearest to ``table``'s.

    Only the sum is compared, so the entry order (natural or zig-zag) does not matter; ties (several
    qualities near 100 write the same all-ones table) resolve to the highest quality.
    """
    distance = np.abs(_IJG_SUMS - int(sum(table)))
    best = len(distance) - 1 - int(np.argmin(distance[::-1]))
    return float(best + 1)


def jpeg_quality(img: Image.Image, encoded: bytes | None = None) -> float:
    """Estimate the JPEG quality from the quantization tables; :data:`LOSSLESS_QUALITY` otherwise."""
    tables = getattr(img, "quantization", None)
    if not tables and encoded is not None and encoded[:3] == b"\xff\xd8\xff":
        try:
            with Image.open(io.BytesIO(encoded), formats=["JPEG"]) as header:  # headers, not pixels
                tables = getattr(header, "quantization", None)
        except (OSError, ValueError, SyntaxError):
            tables = None
    if not tables:
        return LOSSLESS_QUALITY
    luma = tables.get(0) or next(iter(tables.values()))
    return quality_from_table(list(luma))


def image_features(img: Image.Image, encoded: bytes | None = None) -> dict[str, float]:
    """The :data:`FEATURE_COLUMNS` of one image.

    ``encoded`` (the bytes as received) lets ``jpeg_quality`` be read from the JPEG headers when ``img``
    no longer carries its quantization tables (after a mode conversion, for example).
    """
    width, height = img.size
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    small = np.asarray(_downsample(rgb), dtype=np.uint8)  # [h, w, 3]
    r, g, b = (np.ascontiguousarray(small[..., c], dtype=np.float32) * (1.0 / 255.0) for c in range(3))
    hi = np.maximum(np.maximum(r, g), b)
    chroma = hi - np.minimum(np.minimum(r, g), b)
    saturation = np.divide(chroma, hi, out=np.zeros_like(hi), where=hi > 1e-6)
    luma = _LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b  # [h, w]
    mean = [float(r.mean()), float(g.mean()), float(b.mean())]
    std = [float(r.std()), float(g.std()), float(b.std())]
    return {
        "mean_r": float(mean[0]),
        "mean_g": float(mean[1]),
        "mean_b": float(mean[2]),
        "std_r": float(std[0]),
        "std_g": float(std[1]),
        "std_b": float(std[2]),
        "brightness": float(luma.mean()),
        "saturation": float(saturation.mean()),
        "hf_energy_ratio": hf_energy_ratio(luma),
        "jpeg_quality": jpeg_quality(img, encoded),
        "width": float(width),
        "height": float(height),
    }
