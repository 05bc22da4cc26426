"""The training augmentation: flips, quarter turns, shifts and robustness transforms."""

from __future__ import annotations

import numpy as np
from PIL import Image

from aidetect.model.augment import Augmenter, translate
from aidetect.model.config import AugmentConfig


def _image(h: int = 6, w: int = 7) -> Image.Image:
    return Image.fromarray(np.arange(h * w * 3, dtype=np.uint8).reshape(h, w, 3))


def test_translate_shifts_and_mirrors_at_the_border() -> None:
    a = np.asarray(_image())
    b = np.asarray(translate(_image(), dx=2, dy=-1))
    assert b.shape == a.shape
    np.testing.assert_array_equal(b[:-1, 2:], a[1:, :-2])  # content moved right 2, up 1
    np.testing.assert_array_equal(b[:-1, 0], a[1:, 2])  # mirrored in on the left (reflect, edge not repeated)
    np.testing.assert_array_equal(b[-1, 2:], a[-2, :-2])  # mirrored in at the bottom
    np.testing.assert_array_equal(np.asarray(translate(_image(), 0, 0)), a)


def _geometry_only(**kw: object) -> AugmentConfig:
    return AugmentConfig(jpeg_p=0.0, blur_p=0.0, rescale_p=0.0, **kw)  # type: ignore[arg-type]


def test_dihedral_reaches_all_eight_symmetries_and_nothing_else() -> None:
    img = _image(5, 5)
    a = np.asarray(img)
    symmetries = {np.rot90(m, k).tobytes() for m in (a, a[:, ::-1]) for k in range(4)}
    aug = Augmenter(_geometry_only(hflip=True, dihedral=True))
    rng = np.random.default_rng(0)
    seen = {np.asarray(aug(img, rng)).tobytes() for _ in range(200)}
    assert seen == symmetries


def test_without_dihedral_only_horizontal_flips_happen() -> None:
    img = _image(5, 5)
    a = np.asarray(img)
    aug = Augmenter(_geometry_only(hflip=True))
    rng = np.random.default_rng(0)
    seen = {np.asarray(aug(img, rng)).tobytes() for _ in range(50)}
    assert seen == {a.tobytes(), a[:, ::-1].tobytes()}


def test_translation_stays_within_the_limit_and_keeps_the_size() -> None:
    img = _image(8, 8)
    a = np.asarray(img).astype(int)
    aug = Augmenter(_geometry_only(hflip=False, translate_px=2))
    rng = np.random.default_rng(1)
    shifts = set()
    for _ in range(300):
        out = np.asarray(aug(img, rng))
        assert out.shape == a.shape
        # find the shift: the interior of the original must appear at (dy, dx)
        found = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if np.array_equal(out[2:6, 2:6], a[2 - dy : 6 - dy, 2 - dx : 6 - dx])
        ]
        assert len(found) == 1
        shifts.add(found[0])
    assert len(shifts) == 25  # every shift in [-2, 2]^2 happens


def test_augmentation_is_reproducible_from_the_seed() -> None:
    img = _image(16, 16)
    aug = Augmenter(AugmentConfig(dihedral=True, translate_px=3, jpeg_p=0.5, blur_p=0.5, rescale_p=0.5))
    first = [np.asarray(aug(img, np.random.default_rng([0, 1, i]))) for i in range(20)]
    again = [np.asarray(aug(img, np.random.default_rng([0, 1, i]))) for i in range(20)]
    assert all(np.array_equal(x, y) for x, y in zip(first, again, strict=True))
    assert len({x.tobytes() for x in first}) > 10
