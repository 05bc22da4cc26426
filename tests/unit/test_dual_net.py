"""The dual network: a thumbnail branch that sees enlarged thumbnails exactly as its source model did,
and a native-resolution branch that only speaks for inputs with pixel detail of their own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aidetect.data import crops, imaging
from aidetect.errors import ConfigError
from aidetect.model.networks import DualNet, build_model, native_detail, thumbnail_of

MEAN, STD = (0.48, 0.47, 0.43), (0.25, 0.24, 0.26)
SPEC = crops.PreprocessSpec(mode="crops", crop=256, grid=2, max_crops=4, enlarge=True).resolved(256)


def _image(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def net() -> DualNet:
    torch.manual_seed(0)
    model = build_model("dual_s", 2, 256).eval()
    assert isinstance(model, DualNet)
    return model


def test_enlarging_is_by_powers_of_two_bounded_and_only_for_thumbnails() -> None:
    rng = np.random.default_rng(0)
    small = _image(rng, 32, 32)
    big = crops.enlarged(small, SPEC)
    assert big.size == (256, 256)
    assert np.array_equal(np.asarray(big)[::8, ::8], np.asarray(small))  # nearest neighbour: copies
    assert crops.enlarged(_image(rng, 100, 60), SPEC).size == (800, 480)
    thin = _image(rng, 1000, 10)  # x32 would be 32,000 px long: the bound keeps it as it is
    assert crops.enlarged(thin, SPEC).size == (1000, 10)
    assert crops.enlarged(_image(rng, 300, 256), SPEC).size == (300, 256)
    off = crops.PreprocessSpec(mode="crops", crop=256).resolved(256)
    assert crops.enlarged(small, off).size == (32, 32)
    with pytest.raises(ConfigError, match="enlarge"):
        crops.PreprocessSpec(mode="resize", enlarge=True).validate()


def test_native_detail_tells_enlarged_thumbnails_from_native_pixels() -> None:
    rng = np.random.default_rng(1)
    thumb = crops.model_inputs(_image(rng, 64, 64), SPEC, 256, MEAN, STD)
    native = crops.model_inputs(_image(rng, 512, 384), SPEC, 256, MEAN, STD)
    assert len(thumb) == 1 and len(native) == 4
    flags = native_detail(torch.from_numpy(np.concatenate([thumb, native])))
    assert flags.tolist() == [False, True, True, True, True]


def test_the_thumbnail_branch_sees_an_enlarged_thumbnail_exactly_as_the_thumbnail_model(net: DualNet) -> None:
    rng = np.random.default_rng(2)
    imgs = [_image(rng, 32, 32) for _ in range(3)]
    x = torch.from_numpy(np.concatenate([crops.model_inputs(i, SPEC, 256, MEAN, STD) for i in imgs]))
    as_thumbnails = torch.from_numpy(np.stack([imaging.to_model_input(i, 32, MEAN, STD) for i in imgs]))
    with torch.no_grad():
        assert torch.allclose(net(x), net.thumb(as_thumbnails), atol=1e-5)


def test_the_native_branch_adds_to_rows_with_detail_only(net: DualNet) -> None:
    rng = np.random.default_rng(3)
    x = np.concatenate(
        [
            crops.model_inputs(_image(rng, 32, 32), SPEC, 256, MEAN, STD),
            crops.model_inputs(_image(rng, 256, 256), SPEC, 256, MEAN, STD),
        ]
    )
    t = torch.from_numpy(x)
    with torch.no_grad():
        extra = net(t) - net.thumb(torch.nn.functional.avg_pool2d(t, net.factor))
        assert torch.equal(extra[0], torch.zeros(2))
        assert torch.allclose(extra[1], net.native(t[1:])[0], atol=1e-5) and extra[1].abs().sum() > 0


def test_the_exported_graph_answers_as_the_torch_network(net: DualNet, tmp_path: Path) -> None:
    import onnxruntime as ort

    from aidetect.model.optimize import export_onnx

    rng = np.random.default_rng(4)
    x = np.concatenate(
        [
            crops.model_inputs(_image(rng, 32, 32), SPEC, 256, MEAN, STD),
            crops.model_inputs(_image(rng, 512, 512), SPEC, 256, MEAN, STD),
        ]
    )
    path = export_onnx(net, 256, tmp_path / "dual.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert got.shape == (5, 2) and np.allclose(got, want, atol=1e-4)


def test_int8_quantization_of_the_dual_graph_leaves_the_working_directory_clean(
    net: DualNet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """onnxruntime's symbolic shape inference gives up on the routed graph and dumps its partial model into
    the working directory; the quantizer falls back to onnx shape inference, and nothing is left behind."""
    import onnxruntime as ort

    from aidetect.model.optimize import export_onnx, quantize_int8

    rng = np.random.default_rng(5)
    calib = np.concatenate(
        [crops.model_inputs(_image(rng, 512, 512), SPEC, 256, MEAN, STD) for _ in range(2)]
    )
    src = export_onnx(net, 256, tmp_path / "dual.onnx")
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    dst = quantize_int8(src, tmp_path / "int8.onnx", calib, batch=4)
    assert list(work.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "dual.onnx", "int8.onnx"]
    sess = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: calib})[0]
    assert got.shape == (8, 2) and np.isfinite(got).all()


def test_a_dual_network_is_sized_in_powers_of_two_of_its_thumbnail() -> None:
    assert thumbnail_of("dual_s") == ("compact_l", 32) and thumbnail_of("compact_l") is None
    with pytest.raises(ConfigError, match="power of two"):
        build_model("dual_s", 2, 96)


def test_grad_cam_explains_the_branch_that_judged_the_input(net: DualNet) -> None:
    from aidetect.model.explain import grad_cam, last_conv

    rng = np.random.default_rng(5)
    for w, branch in ((32, net.thumb), (512, net.native)):
        x = torch.from_numpy(crops.model_inputs(_image(rng, w, w), SPEC, 256, MEAN, STD)[:1])
        assert any(last_conv(net, x) is m for m in branch.modules())
        heat, probs = grad_cam(net, x)
        assert heat.shape == (256, 256) and np.isfinite(heat).all() and probs.sum() == pytest.approx(1.0)
