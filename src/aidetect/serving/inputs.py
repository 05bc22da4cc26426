"""Turn Open Inference Protocol v2 input tensors into a model batch, enforcing the input limits.

Three inputs are accepted (exactly one per request):

- ``image``  BYTES ``[N]``: encoded images (JPEG, PNG, WebP...), one element per image. Over REST JSON
  the elements are base64 strings; over gRPC and the binary tensor extension they are raw bytes.
- ``pixels`` UINT8 ``[N, H, W, 3]``: RGB pixels, preprocessed like decoded images.
- ``tensor`` FP32 ``[N, 3, S, S]``: already normalised model input (S = the bundle's input size; for a
  ``crops`` bundle, one crop per image).

Images become model input by the bundle's ``preprocess`` (:mod:`aidetect.data.crops`): ``resize`` gives
one row of ``x`` per image; ``crops`` gives each image's crop grid, ``Batch.owner`` naming the image of
each row (the predictor aggregates the crop probabilities into one row per image).

Every refusal is a :class:`RejectedInput` (a KServe ``InvalidInput``: HTTP 400, gRPC INVALID_ARGUMENT)
naming the input and, where it applies, the element index.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from aidetect.data import crops, imaging
from aidetect.data.crops import PreprocessSpec
from aidetect.serving.kserve_compat import InferInput, InvalidInput, raw_bytes
from aidetect.serving.logs import printable

IMAGE, PIXELS, TENSOR = "image", "pixels", "tensor"
INPUT_DATATYPES = {IMAGE: "BYTES", PIXELS: "UINT8", TENSOR: "FP32"}
MAX_NESTING = 8  # JSON ``data`` nests at most this deep (the deepest input, pixels, needs 4)
MAX_REQUEST_ID = 256  # characters of a client's request id (it is echoed in the response)


class RejectedInput(InvalidInput):
    """A client error with a short machine-readable ``code`` for the rejected-inputs metric."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(printable(message))  # names and values a client chose, escaped and bounded
        self.code = code


@dataclass
class Limits:
    max_batch: int = 64
    max_image_pixels: int = imaging.DEFAULT_MAX_PIXELS
    max_crops: int = 64  # model rows (crops) one request may cost in all


@dataclass
class Preprocess:
    input_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    spec: PreprocessSpec = field(default_factory=PreprocessSpec)


@dataclass
class Batch:
    """Model input plus what the inference log needs per image."""

    x: np.ndarray  # float32 [N, 3, S, S]; a crops bundle: [K, 3, S, S], all crops of all images
    # as received (RGB), for features; None where only ``encoded`` is kept (decoded when logged)
    images: Sequence[Image.Image | None] = field(default_factory=list)
    encoded: Sequence[bytes | None] = field(default_factory=list)
    owner: np.ndarray | None = None  # crops: the image index of each row of ``x``; None: row = image


def _within_crop_budget(name: str, per_image: list[np.ndarray], limits: Limits) -> None:
    """Refuse a request once its images' crops together pass the budget; checked after each image, so
    at most one image's crops (the bundle's ``max_crops``) are held beyond it."""
    total = sum(len(a) for a in per_image)
    if total > limits.max_crops:
        msg = (
            f"input '{name}': the first {len(per_image)} images already cost {total} crops, above the "
            f"per-request limit {limits.max_crops}; send fewer images per request"
        )
        raise RejectedInput(msg, "batch_too_large")


def _stack(per_image: list[np.ndarray], pre: Preprocess) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-image model inputs ``[K_i, 3, S, S]`` -> ``x`` and, for crops, the image of each row."""
    x = np.concatenate(per_image)
    return x, crops.owners([len(a) for a in per_image]) if pre.spec.crops else None


def split_bytes_tensor(raw: bytes | memoryview, name: str) -> list[bytes]:
    """Split a V2 serialized BYTES tensor (4-byte little-endian length + data, repeated), safely."""
    out: list[bytes] = []
    offset, view = 0, memoryview(raw)
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise RejectedInput(f"input '{name}' element {len(out)}: truncated length prefix", "bad_encoding")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise RejectedInput(
                f"input '{name}' element {len(out)}: declares {length} bytes but only "
                f"{len(raw) - offset} remain",
                "bad_encoding",
            )
        out.append(bytes(view[offset : offset + length]))
        offset += length
    return out


def _shape(inp: InferInput) -> list[int]:
    try:
        shape = [int(d) for d in inp.shape]
    except (TypeError, ValueError):
        msg = f"input '{inp.name}': shape {inp.shape!r} is not a list of integers"
        raise RejectedInput(msg, "bad_shape") from None
    if any(d < 0 for d in shape):
        raise RejectedInput(f"input '{inp.name}': shape {shape} has a negative dimension", "bad_shape")
    return shape


def _check_batch(name: str, n: int, limits: Limits) -> None:
    if n < 1:
        raise RejectedInput(f"input '{name}': empty batch", "bad_shape")
    if n > limits.max_batch:
        raise RejectedInput(
            f"input '{name}': batch of {n} exceeds the limit {limits.max_batch}", "batch_too_large"
        )


def _byte_elements(inp: InferInput) -> list[bytes]:
    raw = raw_bytes(inp)
    if raw is not None:
        return split_bytes_tensor(raw, inp.name)
    data = inp.data
    if data is None:
        raise RejectedInput(f"input '{inp.name}': no data", "bad_shape")
    if isinstance(data, (str, bytes)):
        data = [data]
    out = []
    for i, item in enumerate(_flatten(data, inp.name)):
        if isinstance(item, bytes):
            out.append(item)
        elif isinstance(item, str):
            try:
                out.append(base64.b64decode(item, validate=True))
            except (binascii.Error, ValueError):
                msg = f"input '{inp.name}' element {i}: JSON BYTES elements must be base64-encoded images"
                raise RejectedInput(msg, "bad_encoding") from None
        else:
            raise RejectedInput(
                f"input '{inp.name}' element {i}: expected bytes, got {type(item).__name__}", "bad_encoding"
            )
    return out


def _flatten(data: Any, name: str) -> list[Any]:
    """JSON ``data`` (a scalar, or lists nested at most :data:`MAX_NESTING` deep) as one flat list.

    Iterative, so no nesting depth can exhaust the stack; objects and ragged mixes of lists and
    scalars are refused (a row-major tensor has scalars only at its innermost level)."""
    if not isinstance(data, list):
        data = [data]
    out: list[Any] = []
    stack: list[tuple[list[Any], int]] = [(data, 1)]
    while stack:
        items, depth = stack.pop()
        if depth > MAX_NESTING:
            raise RejectedInput(f"input '{name}': data nests deeper than {MAX_NESTING} levels", "bad_shape")
        nested = [isinstance(x, list) for x in items]
        if any(nested) and not all(nested):
            raise RejectedInput(f"input '{name}': ragged data (lists mixed with values)", "bad_shape")
        if any(nested):
            stack.extend((x, depth + 1) for x in reversed(items))
            continue
        for x in items:
            if isinstance(x, dict):
                raise RejectedInput(f"input '{name}': data holds an object, not values", "bad_encoding")
        out.extend(items)
    return out


def _numeric(inp: InferInput, dtype: type, shape: list[int]) -> np.ndarray:
    count = math.prod(shape)  # Python ints: a huge declared shape cannot wrap around
    raw = raw_bytes(inp)
    if raw is not None:
        itemsize = np.dtype(dtype).itemsize
        if len(raw) != count * itemsize:
            msg = f"input '{inp.name}': {len(raw)} data bytes do not match shape {shape} ({count * itemsize})"
            raise RejectedInput(msg, "bad_shape")
        return np.frombuffer(raw, dtype=dtype).reshape(shape)
    values = _flatten(inp.data if inp.data is not None else [], inp.name)
    if len(values) != count:
        msg = f"input '{inp.name}': {len(values)} values do not match shape {shape} ({count} values)"
        raise RejectedInput(msg, "bad_shape")
    try:
        flat = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise RejectedInput(f"input '{inp.name}': data is not numeric", "bad_encoding") from None
    if dtype is np.uint8 and (flat.min() < 0 or flat.max() > 255 or not np.all(flat == np.floor(flat))):
        raise RejectedInput(f"input '{inp.name}': UINT8 values must be integers in 0..255", "bad_encoding")
    return flat.astype(dtype).reshape(shape)


def select_input(inputs: list[InferInput]) -> InferInput:
    """The one known input of the request, or a RejectedInput naming what is wrong."""
    if not inputs:
        raise RejectedInput("request has no inputs (expected one of: image, pixels, tensor)", "unknown_input")
    for inp in inputs:
        if inp.name not in INPUT_DATATYPES:
            known = ", ".join(INPUT_DATATYPES)
            raise RejectedInput(
                f"input '{inp.name}': unknown input name (expected one of: {known})", "unknown_input"
            )
    if len(inputs) > 1:
        names = ", ".join(i.name for i in inputs)
        raise RejectedInput(f"request has {len(inputs)} inputs ({names}); send exactly one", "unknown_input")
    inp = inputs[0]
    expected = INPUT_DATATYPES[inp.name]
    if inp.datatype != expected:
        raise RejectedInput(
            f"input '{inp.name}': expected datatype {expected}, got {inp.datatype}", "bad_datatype"
        )
    return inp


def decode_images(inp: InferInput, pre: Preprocess, limits: Limits) -> Batch:
    shape = _shape(inp)
    if len(shape) != 1:
        raise RejectedInput(f"input '{inp.name}': expected shape [N], got {shape}", "bad_shape")
    _check_batch(inp.name, shape[0], limits)
    elements = _byte_elements(inp)
    if len(elements) != shape[0]:
        msg = f"input '{inp.name}': shape says {shape[0]} elements but the data holds {len(elements)}"
        raise RejectedInput(msg, "bad_shape")
    per_image = []
    for i, data in enumerate(elements):
        try:
            per_image.append(
                crops.inputs_from_bytes(
                    data, pre.spec, pre.input_size, pre.mean, pre.std, limits.max_image_pixels
                )
            )
        except imaging.ImageDecodeError as exc:
            raise RejectedInput(f"input '{inp.name}' element {i}: {exc}", exc.reason) from None
        _within_crop_budget(inp.name, per_image, limits)
    x, owner = _stack(per_image, pre)
    # decoded only as finely as the model needs: the inference log decodes its own full-size copy
    return Batch(x=x, images=[None] * len(elements), encoded=list(elements), owner=owner)


def decode_pixels(inp: InferInput, pre: Preprocess, limits: Limits) -> Batch:
    shape = _shape(inp)
    if len(shape) != 4 or shape[3] != 3:
        raise RejectedInput(f"input '{inp.name}': expected shape [N, H, W, 3], got {shape}", "bad_shape")
    _check_batch(inp.name, shape[0], limits)
    n, h, w, _ = shape
    if h < 1 or w < 1:
        raise RejectedInput(f"input '{inp.name}': empty image {h}x{w}", "bad_shape")
    if h * w > limits.max_image_pixels:
        limit = limits.max_image_pixels
        msg = f"input '{inp.name}': images are {w}x{h} = {w * h} pixels, above the pixel limit {limit}"
        raise RejectedInput(msg, "too_large")
    pixels = _numeric(inp, np.uint8, shape)
    images = [Image.fromarray(np.ascontiguousarray(pixels[i]), "RGB") for i in range(n)]
    if (h, w) == (pre.input_size, pre.input_size):  # exactly one crop / the model input itself
        return Batch(x=imaging.normalize(pixels, pre.mean, pre.std), images=images, encoded=[None] * n)
    per_image = []
    for img in images:
        per_image.append(crops.model_inputs(img, pre.spec, pre.input_size, pre.mean, pre.std))
        _within_crop_budget(inp.name, per_image, limits)
    x, owner = _stack(per_image, pre)
    return Batch(x=x, images=images, encoded=[None] * n, owner=owner)


def decode_tensor(inp: InferInput, pre: Preprocess, limits: Limits) -> Batch:
    shape = _shape(inp)
    s = pre.input_size
    if len(shape) != 4 or shape[1:] != [3, s, s]:
        raise RejectedInput(f"input '{inp.name}': expected shape [N, 3, {s}, {s}], got {shape}", "bad_shape")
    _check_batch(inp.name, shape[0], limits)
    x = _numeric(inp, np.float32, shape)
    bad = ~np.isfinite(x).reshape(shape[0], -1).all(axis=1)
    if bad.any():
        raise RejectedInput(
            f"input '{inp.name}' element {int(np.argmax(bad))}: values must be finite", "bad_encoding"
        )
    # undo the normalisation to get an image for the inference-log features
    mean = np.asarray(pre.mean, np.float32)[:, None, None]
    std = np.asarray(pre.std, np.float32)[:, None, None]
    rgb = np.clip((x * std + mean) * 255.0 + 0.5, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    images = [Image.fromarray(np.ascontiguousarray(p), "RGB") for p in rgb]
    return Batch(x=np.ascontiguousarray(x, dtype=np.float32), images=images, encoded=[None] * shape[0])


DECODERS = {IMAGE: decode_images, PIXELS: decode_pixels, TENSOR: decode_tensor}


def decode_request_inputs(inputs: list[InferInput], pre: Preprocess, limits: Limits) -> Batch:
    """Validate and decode the request's inputs into one float32 batch."""
    inp = select_input(inputs)
    return DECODERS[inp.name](inp, pre, limits)
