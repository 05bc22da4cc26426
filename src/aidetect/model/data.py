"""Torch datasets over dataset versions: Pillow decode, augmentation, shared preprocessing.

The bundle's :class:`~aidetect.data.crops.PreprocessSpec` decides what one image becomes: ``resize``
gives one input; ``crops`` gives one random crop in training and, for prediction, the deterministic crop
grid, batched as crops with the index of their image as "target" (:class:`CropLoader` folds the crop
probabilities back into one row per image).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from PIL import Image

from aidetect.data import crops
from aidetect.data.crops import PreprocessSpec
from aidetect.data.imaging import normalize
from aidetect.decision import DecisionSpec
from aidetect.errors import DataError

Transform = Callable[[Image.Image, np.random.Generator], Image.Image]


@dataclass
class SplitData:
    """The image bytes, integer targets and manifest rows of one split."""

    images: list[bytes]
    targets: np.ndarray
    rows: pd.DataFrame

    def __len__(self) -> int:
        return len(self.images)

    def head(self, n: int) -> SplitData:
        """A deterministic, class-balanced-ish subset of at most ``n`` images (every k-th row)."""
        if n <= 0 or n >= len(self):
            return self
        return self.take(spread(len(self), n))

    def take(self, idx: np.ndarray) -> SplitData:
        """The rows at ``idx`` (repeats allowed), images, targets and rows kept aligned."""
        return SplitData(
            [self.images[i] for i in idx], self.targets[idx], self.rows.iloc[idx].reset_index(drop=True)
        )


def spread(n: int, k: int) -> np.ndarray:
    """``k`` indices spread evenly over ``range(n)``, first and last included (``k <= n``)."""
    return np.linspace(0, n - 1, k).round().astype(int)


def targets_for(rows: pd.DataFrame, labels: Sequence[str]) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted(set(rows["label"]) - set(index))
    if unknown:
        raise DataError(f"rows carry labels {unknown} that are not in the label set {list(labels)}")
    return rows["label"].map(index).to_numpy(dtype=np.int64)


def load_split(version: object, split: str, labels: Sequence[str] | None = None) -> SplitData:
    """Read ``split`` of a ``DatasetVersion`` into memory."""
    rows = version.rows(split)  # type: ignore[attr-defined]
    images = version.read_images(split) if len(rows) else []  # type: ignore[attr-defined]
    return SplitData(images, targets_for(rows, labels or version.labels), rows)  # type: ignore[attr-defined]


class ImageDataset(torch.utils.data.Dataset):
    """Encoded images -> ``(float32 [3, S, S], target)``; augmentation is seeded by (seed, epoch, index).

    With a ``crops`` ``preprocess`` an item is one random crop (``grid=False``, training) or the
    image's crop grid ``(float32 [K, 3, S, S], index)`` (``grid=True``, prediction: see :class:`CropLoader`).
    """

    def __init__(
        self,
        images: Sequence[bytes],
        targets: np.ndarray,
        input_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        transform: Transform | None = None,
        seed: int = 0,
        preprocess: PreprocessSpec | None = None,
        grid: bool = False,
    ) -> None:
        self.images = images
        self.targets = np.asarray(targets, dtype=np.int64)
        self.input_size, self.mean, self.std = input_size, tuple(mean), tuple(std)
        self.transform = transform
        self.seed = seed
        self.epoch = 0
        self.preprocess = (preprocess or PreprocessSpec()).resolved(input_size)
        self.grid = grid and self.preprocess.crops

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        set_transform_epoch = getattr(self.transform, "set_epoch", None)
        if set_transform_epoch is not None:  # an epoch-dependent transform (Augmenter.clean_epochs)
            set_transform_epoch(epoch)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        pre = self.preprocess
        img = crops.decode(self.images[i], pre, self.input_size)
        rng = np.random.default_rng([self.seed, self.epoch, i])
        if self.transform is not None:
            img = self.transform(img, rng)
        if self.grid:
            x = crops.model_inputs(img, pre, self.input_size, self.mean, self.std)
            return torch.from_numpy(x), i
        if pre.crops:
            x = normalize(crops.random_crop(crops.enlarged(img, pre), pre.crop, rng), self.mean, self.std)
        else:
            x = crops.model_inputs(img, pre, self.input_size, self.mean, self.std)[0]
        return torch.from_numpy(x), int(self.targets[i])


def epoch_batches(
    n: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world: int = 1
) -> list[list[int]]:
    """This rank's batches for ``epoch``: a seeded permutation split evenly over ranks, partial batch dropped.

    The same arguments always give the same batches, so a resumed run can skip the ones already done.
    """
    perm = np.random.default_rng([seed, epoch, 7919]).permutation(n)
    per_rank = n // world
    mine = perm[rank * per_rank : (rank + 1) * per_rank]
    local = max(1, batch_size // world)
    full = len(mine) // local
    if full == 0:
        raise DataError(f"too few training images ({n}) for batch size {batch_size} on {world} process(es)")
    return [mine[b * local : (b + 1) * local].tolist() for b in range(full)]


def _own_generator(seed: int) -> torch.Generator:
    """A loader's own generator: starting an iterator must not draw from the global RNG, or a resumed
    training run would draw different dropout masks than an uninterrupted one."""
    return torch.Generator().manual_seed(seed)


def _cat_crops(items: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop grids of several images -> one batch of crops and the image index of each crop."""
    x = torch.cat([t for t, _ in items])
    owner = torch.cat([torch.full((len(t),), i, dtype=torch.int64) for t, i in items])
    return x, owner


class CropLoader:
    """Batches of crops ``(x [B, 3, S, S], image index per crop)`` over a dataset's crop grids.

    ``regroup(crop_probs, owners)`` turns the forward loop's output into ``(probs [N, C], targets [N])``
    by the spec's aggregation rule, decided on afterwards by the caller's :class:`DecisionSpec`.
    """

    def __init__(
        self, ds: ImageDataset, batch_images: int, rule: DecisionSpec | None, num_workers: int = 0
    ) -> None:
        self.ds, self.rule = ds, rule
        self.loader = torch.utils.data.DataLoader(
            ds,
            batch_size=batch_images,
            shuffle=False,
            collate_fn=_cat_crops,
            num_workers=num_workers,
            generator=_own_generator(ds.seed),
        )

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return iter(self.loader)

    def regroup(self, probs: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.ds)
        if n == 0:
            return probs, self.ds.targets
        agg = crops.aggregate(probs, owner, n, self.ds.preprocess.aggregate, self.rule)
        return agg, self.ds.targets


def predict_loader(
    data: SplitData,
    input_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    batch_size: int,
    transform: Transform | None = None,
    seed: int = 0,
    preprocess: PreprocessSpec | None = None,
    rule: DecisionSpec | None = None,
    num_workers: int = 0,
) -> torch.utils.data.DataLoader | CropLoader:
    """An ordered loader for evaluation (optionally with a fixed perturbation).

    ``resize``: batches of ``batch_size`` images. ``crops``: a :class:`CropLoader` with about
    ``batch_size`` crops per batch (whole images; ``rule`` is needed for the ``max`` aggregation).
    """
    ds = ImageDataset(
        data.images, data.targets, input_size, mean, std, transform, seed, preprocess, grid=True
    )
    if ds.preprocess.crops:
        per_batch = max(1, batch_size // ds.preprocess.max_crops)
        return CropLoader(ds, per_batch, rule, num_workers)
    return torch.utils.data.DataLoader(
        ds, batch_size=batch_size, shuffle=False, num_workers=num_workers, generator=_own_generator(seed)
    )
