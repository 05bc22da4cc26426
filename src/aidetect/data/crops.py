"""How a bundle sees an image: ``resize`` (a thumbnail model) or ``crops`` (native-resolution forensics).

The preprocessing is part of the model: checkpoint meta and ``bundle.json`` carry ``preprocess``
(:class:`PreprocessSpec`; absent = ``resize``, the behaviour of every older bundle). Every consumer of
model input (training, evaluation, ONNX parity, the drift reference, the explainer, the server) turns
encoded bytes into ``float32 [K, 3, S, S]`` through :func:`inputs_from_bytes` and, for several crops,
folds the ``K`` crop probabilities back into one row per image with :func:`aggregate`.

``resize``: one input per image, :func:`aidetect.data.imaging.model_input_from_bytes` (K = 1).

``crops``: the image at its native resolution (generation traces live in the highest frequencies,
which resizing erases). Inference takes a deterministic grid of ``S x S`` crops (at most ``grid`` per
side, at most ``max_crops`` in all, offsets on the 8 px JPEG/upsampling grid); training takes one random
crop (:func:`random_crop`). Sides shorter than a crop are padded (mirrored); with ``enlarge`` a thumbnail
is first enlarged by nearest neighbour by a power of two (:func:`enlarged`), which adds no pixel detail
(a dual network recognises it: ``aidetect.model.networks.native_detail``). Cost is
bounded whatever the image: at most ``max_crops`` crops of ``S x S`` each, copied crop by crop (the
full image is never copied), and a JPEG with a side above ``max_side`` is decoded at a reduced DCT
scale (memory guard; such an image is then seen down-scaled).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image

from aidetect.data import imaging
from aidetect.decision import DecisionSpec
from aidetect.errors import ConfigError

MODES = ("resize", "crops")
AGGREGATES = ("mean", "max")
ALIGN = 8  # crop offsets are multiples of the JPEG block and every 2^k up-sampling grid up to 8


@dataclass
class PreprocessSpec:
    """The ``preprocess`` entry of checkpoint meta, the training config and ``bundle.json``."""

    mode: str = "resize"
    crop: int = 0  # crop side in px; 0 = the model's input_size (crops must equal the network input)
    grid: int = 3  # at most this many crops along each side
    max_crops: int = 9  # at most this many crops per image
    # how crop probabilities become one image probability: mean of the rows, or the row of the crop
    # with the highest fake score (the decision rule's fake score); the decision is then taken on it
    aggregate: str = "mean"
    max_side: int = 4096  # JPEGs with a longer side are decoded at 1/2, 1/4 or 1/8 scale
    # enlarge images shorter than a crop by nearest neighbour (x2, x4, ...: see enlarged), for dual
    # networks whose thumbnail branch averages the crop back down; off: mirrored padding only
    enlarge: bool = False

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"preprocess.mode: expected one of {', '.join(MODES)}, got {self.mode!r}")
        if self.aggregate not in AGGREGATES:
            known = ", ".join(AGGREGATES)
            raise ConfigError(f"preprocess.aggregate: expected one of {known}, got {self.aggregate!r}")
        if self.crop < 0 or (self.crop and self.crop % ALIGN):
            raise ConfigError(f"preprocess.crop: 0 or a positive multiple of {ALIGN}, got {self.crop}")
        if not 1 <= self.grid <= 16 or not 1 <= self.max_crops <= 64:
            raise ConfigError("preprocess.grid (1..16) / preprocess.max_crops (1..64): out of range")
        if self.enlarge and not self.crops:
            raise ConfigError("preprocess.enlarge: only with mode crops")
        if self.max_side < 256:
            raise ConfigError(f"preprocess.max_side: at least 256, got {self.max_side}")

    @property
    def crops(self) -> bool:
        return self.mode == "crops"

    def resolved(self, input_size: int) -> PreprocessSpec:
        """This spec with ``crop`` filled in; a crop that differs from the network input is refused."""
        spec = PreprocessSpec(**asdict(self))
        if spec.crops:
            spec.crop = spec.crop or int(input_size)
            if spec.crop != int(input_size):
                raise ConfigError(f"preprocess.crop: {spec.crop} must equal input_size {input_size}")
        spec.validate()
        return spec

    def to_meta(self) -> dict[str, Any]:
        """The ``preprocess`` entry; ``enlarge`` only when on, so a server that predates it still reads
        every bundle that does not need it."""
        if not self.crops:
            return {"mode": "resize"}
        meta = asdict(self)
        if not self.enlarge:
            del meta["enlarge"]
        return meta

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> PreprocessSpec:
        """The spec stated by checkpoint meta or ``bundle.json``: absent (or the old string) = resize."""
        raw = meta.get("preprocess")
        if not isinstance(raw, dict):
            return cls()
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"preprocess: unknown field(s) {', '.join(unknown)}")
        spec = cls(**raw)
        return spec.resolved(int(meta.get("input_size", spec.crop or 0))) if spec.crops else spec


def decode(
    data: bytes, spec: PreprocessSpec, size: int, max_pixels: int = imaging.DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Encoded bytes -> the RGB image the model's crops or resize are taken from."""
    if not spec.crops:
        return imaging.decode_for_model(data, size, max_pixels)
    img = imaging.open_image(data, max_pixels)
    longest = max(img.size)
    if img.format == "JPEG" and longest > spec.max_side:
        k = min(8, 1 << math.ceil(math.log2(longest / spec.max_side)))
        try:
            img.draft("RGB", (math.ceil(img.width / k), math.ceil(img.height / k)))
        except (OSError, ValueError) as exc:
            raise imaging.ImageDecodeError(f"image data is corrupt: {exc}", "corrupt") from None
    return imaging.load_rgb(img)


def _positions(length: int, crop: int, count: int) -> list[int]:
    """``count`` crop offsets along a side of ``length`` px, aligned to :data:`ALIGN`, spread evenly."""
    if length <= crop:
        return [0]
    last = (length - crop) // ALIGN * ALIGN
    if count == 1:
        return [(length - crop) // 2 // ALIGN * ALIGN]
    return sorted({round(last * i / (count - 1)) // ALIGN * ALIGN for i in range(count)})


def crop_boxes(width: int, height: int, spec: PreprocessSpec) -> list[tuple[int, int, int, int]]:
    """The deterministic crop grid of a ``width x height`` image: ``(left, top, right, bottom)`` boxes,
    clipped to the image (a short side gives a short box, padded later), at most ``max_crops``."""
    crop = spec.crop
    nx = min(spec.grid, max(1, math.ceil(width / crop)))
    ny = min(spec.grid, max(1, math.ceil(height / crop)))
    while nx * ny > spec.max_crops:  # thin out the side with more crops first
        if nx >= ny:
            nx -= 1
        else:
            ny -= 1
    xs, ys = _positions(width, crop, nx), _positions(height, crop, ny)
    return [(x, y, min(x + crop, width), min(y + crop, height)) for y in ys for x in xs]


ENLARGE_MAX_SIDE = 4  # an enlarged image's longer side stays within 4 crops (memory bound)


def enlarged(img: Image.Image, spec: PreprocessSpec) -> Image.Image:
    """``img`` enlarged by nearest neighbour by the smallest power of two that brings its shorter side
    to the crop (bounded: the longer side stays within :data:`ENLARGE_MAX_SIDE` crops), when ``spec``
    asks for it; any image at least a crop on its shorter side is returned as it is."""
    if not spec.enlarge or min(img.size) >= spec.crop:
        return img
    factor = 1
    while min(img.size) * factor < spec.crop and max(img.size) * factor * 2 <= ENLARGE_MAX_SIDE * spec.crop:
        factor *= 2
    if factor == 1:
        return img
    return img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST)


def _padded(region: Image.Image, crop: int) -> np.ndarray:
    """uint8 ``[crop, crop, 3]``: the region, mirrored outwards where it is smaller than the crop."""
    a = np.asarray(region.convert("RGB") if region.mode != "RGB" else region, dtype=np.uint8)
    h, w = a.shape[:2]
    if (h, w) == (crop, crop):
        return a
    return np.pad(a, ((0, crop - h), (0, crop - w), (0, 0)), mode="symmetric")


def grid_crops(img: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    """uint8 ``[K, S, S, 3]``: the image's crop grid (:func:`crop_boxes`), each copied on its own."""
    img = enlarged(img, spec)
    return np.stack([_padded(img.crop(box), spec.crop) for box in crop_boxes(img.width, img.height, spec)])


def random_crop(img: Image.Image, crop: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 ``[crop, crop, 3]`` at a random aligned offset (training), padded like the grid crops."""
    w, h = img.size
    x = int(rng.integers(0, (w - crop) // ALIGN + 1)) * ALIGN if w > crop else 0
    y = int(rng.integers(0, (h - crop) // ALIGN + 1)) * ALIGN if h > crop else 0
    return _padded(img.crop((x, y, min(x + crop, w), min(y + crop, h))), crop)


def model_inputs(
    img: Image.Image, spec: PreprocessSpec, size: int, mean: Sequence[float], std: Sequence[float]
) -> np.ndarray:
    """A decoded image -> float32 ``[K, 3, S, S]`` (K = 1 for resize)."""
    if not spec.crops:
        return imaging.to_model_input(img, size, mean, std)[None]
    return imaging.normalize(grid_crops(img, spec), mean, std)


def inputs_from_bytes(
    data: bytes,
    spec: PreprocessSpec,
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    max_pixels: int = imaging.DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Encoded image -> float32 ``[K, 3, S, S]``: :func:`decode` then :func:`model_inputs`."""
    return model_inputs(decode(data, spec, size, max_pixels), spec, size, mean, std)


def aggregate(
    probs: np.ndarray, owner: np.ndarray, n: int, how: str, rule: DecisionSpec | None
) -> np.ndarray:
    """Crop probabilities ``[K_total, C]`` -> image probabilities ``[n, C]``; ``owner[k]`` is crop k's image.

    ``mean``: the mean of an image's rows. ``max``: the row of its crop with the highest fake score
    (``rule.fake_score``). Either way each output row is a probability vector the rule then decides on.
    """
    probs = np.asarray(probs, np.float32)
    owner = np.asarray(owner, np.int64)
    if len(probs) != len(owner):
        raise ValueError(f"{len(probs)} crop rows but {len(owner)} owners")
    if n and (len(owner) == 0 or owner.min() < 0 or owner.max() >= n or len(np.unique(owner)) != n):
        raise ValueError("every image needs at least one crop")
    out = np.zeros((n, probs.shape[1] if probs.ndim == 2 else 0), np.float32)
    if how == "mean":
        np.add.at(out, owner, probs)
        out /= np.bincount(owner, minlength=n)[:, None]
        return out
    if how == "max":
        if rule is None:
            raise ValueError("the max aggregation needs the decision rule (its fake score)")
        score = rule.fake_score(probs)
        order = np.lexsort((score, owner))  # by owner, then by score ascending: last per owner wins
        last = np.r_[owner[order][1:] != owner[order][:-1], True]
        out[owner[order][last]] = probs[order][last]
        return out
    raise ValueError(f"unknown aggregate {how!r} (known: {', '.join(AGGREGATES)})")


def owners(counts: Sequence[int]) -> np.ndarray:
    """``[0]*counts[0] + [1]*counts[1] + ...``: the image of each crop, for :func:`aggregate`."""
    return np.repeat(np.arange(len(counts)), np.asarray(counts, np.int64))
