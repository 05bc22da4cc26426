"""The forensic network: fixed residual front end (in the exported ONNX graph), crops through ONNX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from aidetect.errors import ConfigError
from aidetect.model.networks import ForensicNet, ResidualFrontEnd, build_model


def test_front_end_is_fixed_and_high_pass() -> None:
    front = ResidualFrontEnd()
    assert not list(front.parameters()) and not front.state_dict()  # nothing to learn or to save
    flat = torch.full((1, 3, 16, 16), 0.7)
    npr, bands = front(flat)
    assert npr.shape == (1, 3, 16, 16) and bands.shape == (1, 9, 8, 8)
    assert float(npr.abs().max()) == 0.0 and float(bands.abs().max()) < 1e-6  # flat content: no signal
    # nearest-neighbour 2x up-sampling (what generators do) leaves no NPR residual; noise does
    up = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 8), scale_factor=2.0, mode="nearest")
    assert float(front(up)[0].abs().max()) == 0.0
    assert float(front(torch.rand(1, 3, 16, 16))[0].abs().max()) > 0.1


def test_build_forensic_and_refuse_unaligned_sizes() -> None:
    model = build_model("forensic_s", 2, 64).eval()
    assert isinstance(model, ForensicNet)
    with torch.no_grad():
        assert model(torch.randn(3, 3, 64, 64)).shape == (3, 2)
    with pytest.raises(ConfigError, match="multiple of 8"):
        build_model("forensic_s", 2, 60)


@pytest.mark.slow  # the dynamo ONNX export takes ~10-20 s
def test_residual_front_end_is_inside_the_exported_graph(tmp_path: Path) -> None:
    import onnx
    from onnx import numpy_helper

    from aidetect.model.inference import predict_array
    from aidetect.model.optimize import export_onnx, onnx_probabilities

    torch.manual_seed(0)
    model = build_model("forensic_s", 2, 64).eval()
    path = export_onnx(model, 64, tmp_path / "f.onnx")
    graph = onnx.load(str(path)).graph
    ops = {n.op_type for n in graph.node}
    assert {"Sub", "Conv"} <= ops and ops & {"Resize", "Upsample"}  # x - up(x[::2, ::2]), wavelet conv
    consts = [numpy_helper.to_array(t) for t in graph.initializer]
    consts += [
        numpy_helper.to_array(a.t)
        for n in graph.node
        if n.op_type == "Constant"
        for a in n.attribute
        if a.name == "value"
    ]
    haar = np.tile(np.asarray(ResidualFrontEnd.HAAR_HIGH, np.float32)[:, None], (3, 1, 1, 1))
    assert any(c.shape == (9, 1, 2, 2) and np.allclose(c, haar) for c in consts), (
        "Haar kernels are graph constants"
    )
    x = np.random.default_rng(0).standard_normal((4, 3, 64, 64)).astype(np.float32)
    np.testing.assert_allclose(onnx_probabilities(path, x), predict_array(model, x), atol=1e-4)
