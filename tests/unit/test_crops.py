"""Native-resolution crops (aidetect.data.crops): grid geometry, padding, aggregation, bounded cost."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from aidetect.data import crops, imaging
from aidetect.data.crops import ALIGN, PreprocessSpec
from aidetect.decision import DecisionSpec
from aidetect.errors import ConfigError

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
RULE = DecisionSpec(("REAL", "FAKE"), "REAL", 0.5)


def _spec(**kw: object) -> PreprocessSpec:
    base = {"mode": "crops", "crop": 64, "grid": 3, "max_crops": 9}
    return PreprocessSpec(**{**base, **kw}).resolved(64)  # type: ignore[arg-type]


def _encoded(w: int, h: int, fmt: str = "PNG", seed: int = 0) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def test_grid_covers_the_image_with_aligned_offsets() -> None:
    spec = _spec(grid=2, max_crops=4)
    assert crops.crop_boxes(128, 128, spec) == [
        (0, 0, 64, 64),
        (64, 0, 128, 64),
        (0, 64, 64, 128),
        (64, 64, 128, 128),
    ]
    boxes = crops.crop_boxes(250, 100, _spec())
    assert len(boxes) == 3 * 2
    assert all(x % ALIGN == 0 and y % ALIGN == 0 for x, y, _, _ in boxes)
    assert all(r - x == 64 and b - y == 64 for x, y, r, b in boxes)
    assert max(r for _, _, r, _ in boxes) > 250 - ALIGN  # reaches the far edge (up to the alignment)


def test_max_crops_thins_the_longer_side_and_one_crop_is_central() -> None:
    assert len(crops.crop_boxes(1000, 1000, _spec(max_crops=4))) == 4
    (box,) = crops.crop_boxes(1000, 200, _spec(max_crops=1))
    assert box[0] == (1000 - 64) // 2 // ALIGN * ALIGN and box[2] - box[0] == 64


def test_small_images_are_padded_not_upscaled() -> None:
    img = Image.fromarray(np.arange(10 * 20 * 3, dtype=np.uint8).reshape(10, 20, 3))
    (crop,) = crops.grid_crops(img, _spec())
    assert crop.shape == (64, 64, 3)
    np.testing.assert_array_equal(crop[:10, :20], np.asarray(img))  # original pixels, unscaled
    np.testing.assert_array_equal(crop[10:20, :20], np.asarray(img)[::-1])  # mirrored outwards


@pytest.mark.parametrize(("w", "h"), [(1, 100_000), (100_000, 1), (3, 3)])
def test_extreme_shapes_cost_a_bounded_number_of_crops(w: int, h: int) -> None:
    x = crops.inputs_from_bytes(_encoded(w, h), _spec(), 64, MEAN, STD)
    assert x.dtype == np.float32 and x.shape[1:] == (3, 64, 64)
    assert 1 <= len(x) <= 3  # a 1 x N strip gives at most `grid` crops, never N / crop of them
    assert np.isfinite(x).all()


def test_huge_header_is_refused_before_decoding() -> None:
    bomb = Image.new("1", (20000, 20000))
    buf = io.BytesIO()
    bomb.save(buf, format="PNG", optimize=True)
    with pytest.raises(imaging.ImageDecodeError) as err:
        crops.inputs_from_bytes(buf.getvalue(), _spec(), 64, MEAN, STD)
    assert err.value.reason == "too_large"


def test_large_jpeg_is_decoded_at_a_reduced_scale() -> None:
    data = _encoded(2400, 600, "JPEG")
    img = crops.decode(data, _spec(max_side=1024), 64)
    assert img.size == (600, 150)  # 1/4 DCT scale: the longest side fits under max_side
    assert crops.decode(data, _spec(), 64).size == (2400, 600)  # under the default guard: native


def test_random_crop_is_aligned_and_matches_the_grid_on_a_crop_sized_image() -> None:
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    np.testing.assert_array_equal(
        crops.random_crop(img, 64, np.random.default_rng(0)), crops.grid_crops(img, _spec())[0]
    )
    big = Image.fromarray(np.random.default_rng(2).integers(0, 256, (300, 200, 3), dtype=np.uint8))
    a = np.asarray(big)
    for seed in range(5):
        c = crops.random_crop(big, 64, np.random.default_rng(seed))
        hits = [
            (y, x)
            for y in range(0, 300 - 63, ALIGN)
            for x in range(0, 200 - 63, ALIGN)
            if np.array_equal(a[y : y + 64, x : x + 64], c)
        ]
        assert hits, "a random crop is a window of the image at an aligned offset"


def test_resize_mode_is_todays_preprocessing() -> None:
    data = _encoded(80, 60, "JPEG")
    x = crops.inputs_from_bytes(data, PreprocessSpec(), 32, MEAN, STD)
    np.testing.assert_array_equal(x[0], imaging.model_input_from_bytes(data, 32, MEAN, STD))
    assert x.shape == (1, 3, 32, 32)


def test_aggregate_mean_and_max() -> None:
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.2, 0.8]], np.float32)
    owner = crops.owners([2, 1, 1])
    np.testing.assert_allclose(
        crops.aggregate(probs, owner, 3, "mean", RULE), [[0.6, 0.4], [0.6, 0.4], [0.2, 0.8]]
    )
    np.testing.assert_allclose(
        crops.aggregate(probs, owner, 3, "max", RULE), [[0.3, 0.7], [0.6, 0.4], [0.2, 0.8]]
    )
    with pytest.raises(ValueError, match="at least one crop"):
        crops.aggregate(probs, np.array([0, 0, 2, 2]), 3, "mean", RULE)
    with pytest.raises(ValueError, match="decision rule"):
        crops.aggregate(probs, owner, 3, "max", None)


def test_spec_from_meta() -> None:
    assert PreprocessSpec.from_meta({}).mode == "resize"
    assert (
        PreprocessSpec.from_meta({"preprocess": "aidetect.data.imaging.model_input_from_bytes"}).mode
        == "resize"
    )
    spec = PreprocessSpec.from_meta({"preprocess": {"mode": "crops"}, "input_size": 128})
    assert spec.crop == 128 and spec.to_meta()["crop"] == 128
    assert PreprocessSpec.from_meta({"preprocess": spec.to_meta(), "input_size": 128}) == spec
    with pytest.raises(ConfigError, match="must equal input_size"):
        PreprocessSpec.from_meta({"preprocess": {"mode": "crops", "crop": 64}, "input_size": 128})
    with pytest.raises(ConfigError, match="unknown field"):
        PreprocessSpec.from_meta({"preprocess": {"mode": "crops", "tile": 3}, "input_size": 128})
    with pytest.raises(ConfigError, match=r"preprocess\.aggregate"):
        PreprocessSpec(mode="crops", aggregate="median").validate()


def _odd_images() -> dict[str, bytes]:
    rng = np.random.default_rng(3)
    rgb = Image.fromarray(rng.integers(0, 256, (90, 70, 3), dtype=np.uint8))
    out = {}
    for name, img, fmt, kw in (
        ("cmyk", rgb.convert("CMYK"), "JPEG", {}),
        ("palette", rgb.convert("P"), "PNG", {}),
        ("sixteen_bit", Image.fromarray(rng.integers(0, 65535, (90, 70), dtype=np.uint16)), "PNG", {}),
        ("animated", rgb, "GIF", {"save_all": True, "append_images": [rgb.rotate(90)]}),
        ("rgba", rgb.convert("RGBA"), "PNG", {}),
    ):
        buf = io.BytesIO()
        img.save(buf, format=fmt, **kw)
        out[name] = buf.getvalue()
    return out


@pytest.mark.parametrize("kind", ["cmyk", "palette", "sixteen_bit", "animated", "rgba"])
def test_odd_modes_become_rgb_crops(kind: str) -> None:
    x = crops.inputs_from_bytes(_odd_images()[kind], _spec(grid=2, max_crops=4), 64, MEAN, STD)
    # 70 x 90: one column (a second aligned offset would repeat it) x two rows; an animation's first frame
    assert x.shape == (2, 3, 64, 64) and np.isfinite(x).all()
