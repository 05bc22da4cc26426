"""Upload-condition augmentation (rotation, colour jitter, patch masking, kept rescale), upload slice."""

from __future__ import annotations

import numpy as np
from PIL import Image

from aidetect.model.augment import Augmenter, colour_jitter, limit_side, mask_patches, rotate
from aidetect.model.config import AugmentConfig
from aidetect.model.slices import PERTURBATIONS


def _image(h: int = 64, w: int = 48, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def test_rotation_keeps_the_size_and_fills_corners_from_the_image() -> None:
    flat = Image.new("RGB", (40, 30), (200, 10, 90))
    turned = np.asarray(rotate(flat, 37.0))
    assert turned.shape == (30, 40, 3)
    assert np.abs(turned.astype(int) - [200, 10, 90]).max() <= 1  # no black corners
    np.testing.assert_array_equal(np.asarray(rotate(flat, 0.0)), np.asarray(flat))


def test_mask_covers_about_the_ratio_with_grey_patches() -> None:
    masked = np.asarray(mask_patches(_image(64, 64), 0.25, 16, np.random.default_rng(0)))
    grey = (masked == 128).all(axis=2)
    assert grey.sum() == 4 * 16 * 16  # 4 of the 16 cells


def test_jitter_and_limit_side() -> None:
    img = _image()
    np.testing.assert_array_equal(np.asarray(colour_jitter(img, (1.0, 1.0, 1.0))), np.asarray(img))
    assert np.asarray(colour_jitter(img, (1.3, 0.8, 1.1))).shape == (64, 48, 3)
    assert limit_side(_image(2000, 500), 1080).size == (270, 1080)
    small = _image()
    assert limit_side(small, 1080) is small  # never up-scaled


def test_kept_rescale_changes_the_size_for_every_class_alike() -> None:
    cfg = AugmentConfig(
        hflip=False, jpeg_p=0, blur_p=0, rescale_p=1.0, rescale=[1.5, 1.5], rescale_back=False
    )
    assert Augmenter(cfg)(_image(), np.random.default_rng(0)).size == (72, 96)


def test_upload_slice_limits_the_side_then_recompresses() -> None:
    out = PERTURBATIONS["upload_1080_q85"](_image(1600, 400))
    assert out.size == (270, 1080) and out.mode == "RGB"


def test_clean_epochs_keep_pixels_lossless_until_the_dataset_reaches_them() -> None:
    from aidetect.model.data import ImageDataset
    from tests.helpers.serving import jpeg

    cfg = AugmentConfig(hflip=True, jpeg_p=1.0, jpeg_quality=[30, 30], clean_epochs=2)
    aug = Augmenter(cfg)
    img = _image(32, 32)
    flips = {img.tobytes(), img.transpose(Image.Transpose.FLIP_LEFT_RIGHT).tobytes()}
    ds = ImageDataset([jpeg(32)], np.zeros(1, np.int64), 32, (0.5,) * 3, (0.25,) * 3, aug)
    for epoch in (0, 1):  # clean epochs: the image or its mirror, bit for bit
        ds.set_epoch(epoch)
        rng = np.random.default_rng(epoch)
        assert all(aug(img, rng).tobytes() in flips for _ in range(8))
    ds.set_epoch(2)  # from then on the upload transforms apply (JPEG q30 on every image here)
    assert aug(img, np.random.default_rng(0)).tobytes() not in flips
