"""The synthetic demo set: deterministic, class-per-folder, and not separable by colour statistics."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aidetect.data.demo import generate_demo
from aidetect.errors import ConfigError


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.png")):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def test_demo_is_deterministic_and_class_per_folder(tmp_path: Path) -> None:
    a = generate_demo(tmp_path / "a", n_per_class=12, size=32, seed=3)
    b = generate_demo(tmp_path / "b", n_per_class=12, size=32, seed=3)
    c = generate_demo(tmp_path / "c", n_per_class=12, size=32, seed=4)
    assert sorted(p.name for p in a.iterdir()) == ["FAKE", "REAL"]
    assert len(list((a / "REAL").glob("*.png"))) == 12
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)
    img = Image.open(next((a / "FAKE").glob("*.png")))
    assert img.size == (32, 32) and img.mode == "RGB"


def test_demo_three_classes(tmp_path: Path) -> None:
    out = generate_demo(tmp_path, n_per_class=3, labels=("real", "ai-generated", "deepfake"))
    assert sorted(p.name for p in out.iterdir()) == ["ai-generated", "deepfake", "real"]


def _load(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p), dtype=np.float32) for p in sorted(folder.glob("*.png"))])


def test_classes_share_colour_statistics_but_differ_in_local_correlation(tmp_path: Path) -> None:
    out = generate_demo(tmp_path, n_per_class=150, size=32)
    real, fake = _load(out / "REAL"), _load(out / "FAKE")
    # global colour statistics overlap: class means of per-image mean colour are within a few levels
    assert np.abs(real.mean(axis=(1, 2)).mean(0) - fake.mean(axis=(1, 2)).mean(0)).max() < 12
    # a single-threshold classifier on per-image brightness is near chance
    brightness = _best_threshold_accuracy(real.mean(axis=(1, 2, 3)), fake.mean(axis=(1, 2, 3)))
    assert brightness < 0.65

    # but a local period-2 (checkerboard) trace separates them
    checker = (np.indices((32, 32)).sum(axis=0) % 2 * 2 - 1)[None, :, :, None]

    def period2(x: np.ndarray) -> np.ndarray:
        return np.abs((x * checker).mean(axis=(1, 2))).mean(axis=1)

    assert _best_threshold_accuracy(period2(real), period2(fake)) > 0.9


def _best_threshold_accuracy(a: np.ndarray, b: np.ndarray) -> float:
    values = np.concatenate([a, b])
    return max(max((a < t).mean() + (b >= t).mean(), (a >= t).mean() + (b < t).mean()) / 2 for t in values)


def test_demo_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        generate_demo(tmp_path, labels=("only",))
    with pytest.raises(ConfigError):
        generate_demo(tmp_path, n_per_class=0)
