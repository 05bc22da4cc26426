"""Torch datasets over dataset versions: Pillow decode, augmentation, shared preprocessing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from PIL import Image

from aidetect.data.imaging import decode_for_model, to_model_input
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
        idx = np.linspace(0, len(self) - 1, n).round().astype(int)
        return SplitData(
            [self.images[i] for i in idx], self.targets[idx], self.rows.iloc[idx].reset_index(drop=True)
        )


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
    """Encoded images -> ``(float32 [3, S, S], target)``; augmentation is seeded by (seed, epoch, index)."""

    def __init__(
        self,
        images: Sequence[bytes],
        targets: np.ndarray,
        input_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        transform: Transform | None = None,
        seed: int = 0,
    ) -> None:
        self.images = images
        self.targets = np.asarray(targets, dtype=np.int64)
        self.input_size, self.mean, self.std = input_size, tuple(mean), tuple(std)
        self.transform = transform
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = decode_for_model(self.images[i], self.input_size)
        if self.transform is not None:
            img = self.transform(img, np.random.default_rng([self.seed, self.epoch, i]))
        x = to_model_input(img, self.input_size, self.mean, self.std)
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


def predict_loader(
    data: SplitData,
    input_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    batch_size: int,
    transform: Transform | None = None,
    seed: int = 0,
) -> torch.utils.data.DataLoader:
    """An ordered loader for evaluation (optionally with a fixed perturbation)."""
    ds = ImageDataset(data.images, data.targets, input_size, mean, std, transform, seed)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False)
