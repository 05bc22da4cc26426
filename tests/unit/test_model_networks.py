"""Networks and checkpoints: shapes, sizes, round trips, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aidetect.errors import ConfigError, DataError
from aidetect.model.checkpoint import load_checkpoint, save_checkpoint
from aidetect.model.networks import FlipAveraged, available_archs, build_model
from tests.helpers.models import break_mirror_symmetry


def _meta(arch: str, n: int = 2, size: int = 32) -> dict:
    labels = ["REAL", "FAKE", "DEEPFAKE"][:n]
    return {
        "arch": arch,
        "num_classes": n,
        "input_size": size,
        "labels": labels,
        "mean": (0.5, 0.5, 0.5),
        "std": (0.25, 0.25, 0.25),
    }


@pytest.mark.parametrize(
    "arch", ["compact", "compact_s", "mobilenet_v3_small", "resnet18", "efficientnet_b0"]
)
def test_every_arch_maps_images_to_logits(arch: str) -> None:
    size = 32 if arch.startswith("compact") else 64
    model = build_model(arch, 3, size).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 3)


def test_compact_handles_large_inputs() -> None:
    model = build_model("compact", 2, 224).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 2)


def test_unknown_arch_names_the_field() -> None:
    with pytest.raises(ConfigError, match="arch: unknown model 'vgg99'"):
        build_model("vgg99", 2, 32)
    assert "compact" in available_archs()


def test_checkpoint_round_trip_is_small_and_exact(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("compact", 2, 32).eval()
    path = tmp_path / "model.pt"
    save_checkpoint(str(path), model, {**_meta("compact"), "threshold": 0.42})
    assert path.stat().st_size < 5 * 1024 * 1024
    loaded, meta = load_checkpoint(str(path))
    assert meta["threshold"] == 0.42 and meta["labels"] == ["REAL", "FAKE"] and meta["mean"] == [0.5] * 3
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert not loaded.training


def test_flip_averaging_is_the_mean_of_both_views_and_mirror_invariant() -> None:
    torch.manual_seed(0)
    net = break_mirror_symmetry(build_model("compact_s", 2, 32).eval())
    model = FlipAveraged(net).eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(net(x), net(x.flip(3)), atol=1e-4)
        torch.testing.assert_close(model(x), (net(x) + net(x.flip(3))) / 2, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(model(x), model(x.flip(3)), atol=1e-5, rtol=1e-5)


def test_checkpoint_with_flip_averaging_loads_wrapped_and_saves_plain_weights(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = build_model("compact_s", 2, 32).eval()
    path = tmp_path / "model.pt"
    save_checkpoint(str(path), FlipAveraged(net), {**_meta("compact_s"), "flip_average": True})
    raw = torch.load(path, weights_only=True)
    assert set(raw["state_dict"]) == set(net.state_dict())  # no "module." prefix
    loaded, meta = load_checkpoint(str(path))
    assert isinstance(loaded, FlipAveraged) and meta["flip_average"] is True
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), (net(x) + net(x.flip(3))) / 2, atol=1e-5, rtol=1e-5)
    save_checkpoint(str(path), net, _meta("compact_s"))
    assert not isinstance(load_checkpoint(str(path))[0], FlipAveraged)


def test_checkpoint_via_s3(s3_env: str, tmp_path: Path) -> None:
    from aidetect import storage

    storage.s3_client().create_bucket(Bucket="models")
    model = build_model("compact_s", 2, 32).eval()
    save_checkpoint("s3://models/run1/model.pt", model, _meta("compact_s"))
    loaded, meta = load_checkpoint("s3://models/run1/model.pt")
    assert meta["arch"] == "compact_s"
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_bad_checkpoints_fail_clearly(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="not an aidetect checkpoint"):
        load_checkpoint(str(junk))
    with pytest.raises(DataError, match="missing"):
        save_checkpoint(str(tmp_path / "m.pt"), build_model("compact", 2, 32), {"arch": "compact"})
    assert not (tmp_path / "m.pt").exists()


def test_pretrained_weights_load_without_the_head(tmp_path: Path) -> None:
    src = build_model("resnet18", 1000, 64)
    torch.save(src.state_dict(), tmp_path / "imagenet.pt")
    model = build_model("resnet18", 2, 64, weights=str(tmp_path / "imagenet.pt"))
    assert torch.equal(model.conv1.weight, src.conv1.weight)
    assert model.fc.out_features == 2
    bad = tmp_path / "other.pt"
    torch.save(build_model("compact", 2, 32).state_dict(), bad)
    with pytest.raises(ConfigError, match="weights"):
        build_model("resnet18", 2, 64, weights=str(bad))
