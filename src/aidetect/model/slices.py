"""Evaluation slices: groups of the evaluation rows (content class, source, resolution) and
perturbations made on the fly (re-JPEG, downscale, blur), each with its own metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from PIL import Image

from aidetect import config
from aidetect.errors import ConfigError
from aidetect.model.augment import blur, jpeg_reencode, rescale

# family name -> manifest column (``source`` is the dataset's origin: coco, diffusiondb, ...)
GROUP_COLUMNS = {"content_class": "content_class", "source": "origin", "resolution": None}

PERTURBATIONS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "jpeg_q50": lambda img: jpeg_reencode(img, 50),
    "jpeg_q75": lambda img: jpeg_reencode(img, 75),
    "downscale_x2": lambda img: rescale(img, 0.5, back=False),
    "blur": lambda img: blur(img, 1.0),
}


@dataclass
class SlicesConfig:
    """Which slices the evaluation reports (``configs/slices.yaml``)."""

    groups: list[str] = field(default_factory=lambda: ["content_class", "source", "resolution"])
    perturbations: list[str] = field(default_factory=lambda: list(PERTURBATIONS))
    # resolution buckets by the shorter side in px: upper bounds, the last bucket is open-ended
    resolution_edges: list[int] = field(default_factory=lambda: [64, 256, 1024])

    def validate(self) -> None:
        for i, g in enumerate(self.groups):
            if g not in GROUP_COLUMNS:
                raise ConfigError(f"groups[{i}]: unknown slice {g!r} (known: {', '.join(GROUP_COLUMNS)})")
        for i, p in enumerate(self.perturbations):
            if p not in PERTURBATIONS:
                raise ConfigError(
                    f"perturbations[{i}]: unknown slice {p!r} (known: {', '.join(PERTURBATIONS)})"
                )
        if any(b <= a for a, b in zip(self.resolution_edges, self.resolution_edges[1:], strict=False)):
            raise ConfigError("resolution_edges: must be increasing")


def load_slices_config(path: str | None = None) -> SlicesConfig:
    return config.load(SlicesConfig, "slices", path=path)


def resolution_bucket(width: int, height: int, edges: list[int]) -> str:
    short = min(int(width), int(height))
    lo = 0
    for edge in edges:
        if short <= edge:
            return f"{lo + 1}-{edge}px" if lo else f"<={edge}px"
        lo = edge
    return f">{lo}px"


def group_labels(rows: pd.DataFrame, family: str, edges: list[int]) -> pd.Series | None:
    """The slice value of every row for ``family`` (None when the data has no such information)."""
    if family == "resolution":
        return pd.Series(
            [resolution_bucket(w, h, edges) for w, h in zip(rows["width"], rows["height"], strict=True)],
            index=rows.index,
        )
    column = GROUP_COLUMNS[family]
    if column not in rows or rows[column].isna().all():
        return None
    return rows[column].fillna("unknown").astype(str)


def group_indices(rows: pd.DataFrame, cfg: SlicesConfig) -> dict[str, dict[str, np.ndarray]]:
    """``{family: {value: row positions}}`` for every configured group family present in the data."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for family in cfg.groups:
        values = group_labels(rows, family, cfg.resolution_edges)
        if values is None:
            continue
        arr = values.to_numpy()
        out[family] = {str(v): np.nonzero(arr == v)[0] for v in sorted(set(arr))}
    return out
