"""Evaluation slices: groups of the evaluation rows (content class, source, resolution) and
perturbations made on the fly (re-JPEG, downscale, blur, an upload pipeline), each with its own metrics."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from PIL import Image

from aidetect.model.augment import blur, jpeg_reencode, limit_side, rescale
from aidetect.model.config import GROUP_COLUMNS, PERTURBATION_NAMES, SlicesConfig

PERTURBATIONS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "jpeg_q50": lambda img: jpeg_reencode(img, 50),
    "jpeg_q75": lambda img: jpeg_reencode(img, 75),
    "downscale_x2": lambda img: rescale(img, 0.5, back=False),
    "blur": lambda img: blur(img, 1.0),
    "upload_1080_q85": lambda img: jpeg_reencode(limit_side(img, 1080), 85),
}
assert tuple(PERTURBATIONS) == PERTURBATION_NAMES, "the config's perturbation names and these must match"


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
    """``{family: {value: row positions}}`` for every configured group family present in the data.

    In a grown version every family but ``provenance`` groups the base rows only. The reviewer-labelled
    images are another domain with no CIFAR content class: in the fairness families they became an
    ``unknown`` class, a source and a resolution of their own, and the gap checks compared them with,
    say, the frogs of the base data. They are judged as the ``provenance=feedback`` group instead, by
    the feedback gate (a floor, and no regression against the champion on exactly those images).
    """
    out: dict[str, dict[str, np.ndarray]] = {}
    base = np.nonzero(rows["provenance"].to_numpy() != "feedback")[0] if "provenance" in rows else None
    everything = np.arange(len(rows))
    for family in cfg.groups:
        values = group_labels(rows, family, cfg.resolution_edges)
        if values is None:
            continue
        arr = values.to_numpy()
        pos = everything if family == "provenance" or base is None else base
        out[family] = {str(v): pos[arr[pos] == v] for v in sorted(set(arr[pos]))}
    return out
