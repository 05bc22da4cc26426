"""V2 input decoding and limits: every refusal names the input (and element) and has a reason code."""

from __future__ import annotations

import base64
import struct

import numpy as np
import pytest

from aidetect.data.crops import PreprocessSpec
from aidetect.serving.inputs import (
    Limits,
    Preprocess,
    RejectedInput,
    decode_request_inputs,
    split_bytes_tensor,
)
from aidetect.serving.kserve_compat import InferInput
from tests.helpers.serving import jpeg, png_header_bomb

PRE = Preprocess(16, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


def _bytes_input(items: list[bytes], name: str = "image", shape: list[int] | None = None) -> InferInput:
    inp = InferInput(name, shape or [len(items)], "BYTES")
    inp._raw_data = b"".join(struct.pack("<I", len(b)) + b for b in items)
    return inp


def _decode(inputs: list[InferInput], **limits: int):
    return decode_request_inputs(inputs, PRE, Limits(**limits))


def test_bytes_input_decodes_every_element() -> None:
    batch = _decode([_bytes_input([jpeg(20, 1), jpeg(40, 2)])])
    assert batch.x.shape == (2, 3, 16, 16) and batch.x.dtype == np.float32
    # decoded only as finely as the model needs; the inference log gets the bytes as received
    assert batch.images == [None, None] and [len(b) for b in batch.encoded] == [
        len(jpeg(20, 1)),
        len(jpeg(40, 2)),
    ]


def test_json_bytes_are_base64() -> None:
    inp = InferInput("image", [1], "BYTES", data=[base64.b64encode(jpeg(20)).decode()])
    assert _decode([inp]).x.shape == (1, 3, 16, 16)
    inp = InferInput("image", [1], "BYTES", data=["not base64 !!"])
    with pytest.raises(RejectedInput, match=r"element 0.*base64") as err:
        _decode([inp])
    assert err.value.code == "bad_encoding"


@pytest.mark.parametrize(
    ("items", "limits", "match", "code"),
    [
        ([b"junk"], {}, "input 'image' element 0", "corrupt"),
        ([jpeg(20), jpeg(20)[:40]], {}, "input 'image' element 1", "corrupt"),
        (
            [jpeg(20), png_header_bomb(3000, 3000)],
            {"max_image_pixels": 1_000_000},
            "element 1.*pixel",
            "too_large",
        ),
        ([jpeg(20)] * 5, {"max_batch": 4}, "batch of 5 exceeds the limit 4", "batch_too_large"),
    ],
)
def test_bad_images_are_named(items: list[bytes], limits: dict, match: str, code: str) -> None:
    with pytest.raises(RejectedInput, match=match) as err:
        _decode([_bytes_input(items)], **limits)
    assert err.value.code == code


def test_truncated_binary_tensor() -> None:
    raw = struct.pack("<I", 100) + b"abc"
    with pytest.raises(RejectedInput, match="element 0: declares 100 bytes"):
        split_bytes_tensor(raw, "image")
    with pytest.raises(RejectedInput, match="truncated length prefix"):
        split_bytes_tensor(b"\x01\x00", "image")


def test_shape_and_name_and_datatype_errors() -> None:
    with pytest.raises(RejectedInput, match="shape says 3 elements but the data holds 1"):
        _decode([_bytes_input([jpeg(20)], shape=[3])])
    with pytest.raises(RejectedInput, match="'photo': unknown input name") as err:
        _decode([_bytes_input([jpeg(20)], name="photo")])
    assert err.value.code == "unknown_input"
    with pytest.raises(RejectedInput, match="exactly one"):
        _decode([_bytes_input([jpeg(20)]), _bytes_input([jpeg(20)])])
    inp = InferInput("image", [1], "FP32", data=[1.0])
    with pytest.raises(RejectedInput, match="expected datatype BYTES, got FP32"):
        _decode([inp])


def test_pixels_and_tensor_inputs_match_the_image_path() -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    inp = InferInput("pixels", list(pixels.shape), "UINT8", data=pixels.flatten().tolist())
    by_pixels = _decode([inp])
    import io

    pngs = []
    for p in pixels:
        buf = io.BytesIO()
        Image.fromarray(p).save(buf, "PNG")
        pngs.append(buf.getvalue())
    np.testing.assert_allclose(_decode([_bytes_input(pngs)]).x, by_pixels.x)
    t = InferInput("tensor", [2, 3, 16, 16], "FP32")
    t._raw_data = by_pixels.x.tobytes()
    back = _decode([t])
    np.testing.assert_array_equal(back.x, by_pixels.x)
    np.testing.assert_array_equal(np.asarray(back.images[0]), pixels[0])  # denormalised for features


def test_numeric_input_errors() -> None:
    inp = InferInput("pixels", [1, 4, 4, 3], "UINT8", data=[300] * 48)
    with pytest.raises(RejectedInput, match=r"0\.\.255"):
        _decode([inp])
    inp = InferInput("pixels", [1, 4, 4, 3], "UINT8")
    inp._raw_data = b"\x00" * 47
    with pytest.raises(RejectedInput, match="47 data bytes do not match shape"):
        _decode([inp])
    inp = InferInput("pixels", [1, 5000, 5000, 3], "UINT8", data=[])
    with pytest.raises(RejectedInput, match="pixel limit") as err:
        _decode([inp], max_image_pixels=1000)
    assert err.value.code == "too_large"
    x = np.zeros((2, 3, 16, 16), np.float32)
    x[1, 0, 0, 0] = np.nan
    inp = InferInput("tensor", [2, 3, 16, 16], "FP32")
    inp._raw_data = x.tobytes()
    with pytest.raises(RejectedInput, match="'tensor' element 1: values must be finite"):
        _decode([inp])
    inp = InferInput("tensor", [1, 3, 8, 8], "FP32", data=[0.0] * 192)
    with pytest.raises(RejectedInput, match=r"expected shape \[N, 3, 16, 16\]"):
        _decode([inp])


CROPS = Preprocess(16, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), PreprocessSpec("crops", 16, 2, 4))


@pytest.mark.parametrize("kind", ["image", "pixels"])
def test_a_crops_request_is_refused_past_its_crop_budget(kind: str) -> None:
    def request(n: int) -> InferInput:
        if kind == "image":
            return _bytes_input([jpeg(40, i) for i in range(n)])
        pixels = np.random.default_rng(0).integers(0, 256, (n, 40, 40, 3), dtype=np.uint8)
        return InferInput("pixels", [n, 40, 40, 3], "UINT8", data=pixels.ravel().tolist())

    # a 40 px image costs its 2x2 grid of 16 px crops: 8 crops for 2 images fit a budget of 10, 12 do not
    batch = decode_request_inputs([request(2)], CROPS, Limits(max_crops=10))
    assert batch.x.shape == (8, 3, 16, 16) and batch.owner.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    with pytest.raises(RejectedInput, match=r"first 3 images already cost 12 crops.*limit 10") as err:
        decode_request_inputs([request(3)], CROPS, Limits(max_crops=10))
    assert err.value.code == "batch_too_large"
