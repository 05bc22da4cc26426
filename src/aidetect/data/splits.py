"""Deterministic train/val/test assignment from an image's sha256, respecting the source's own splits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aidetect.data.config import SPLITS

_SCALE = float(16**12)


def hash_unit(sha256: str) -> float:
    """A uniform number in [0, 1) derived from the hex digest (the same image always maps the same)."""
    return int(sha256[-12:], 16) / _SCALE


def pick(sha256: str, fractions: Mapping[str, float], allowed: Iterable[str]) -> str:
    """Choose among ``allowed`` splits by the digest, with ``fractions`` renormalised over them."""
    chosen = [s for s in SPLITS if s in set(allowed) and fractions.get(s, 0.0) > 0]
    if not chosen:
        return "train"
    total = sum(fractions[s] for s in chosen)
    u = hash_unit(sha256) * total
    acc = 0.0
    for s in chosen:
        acc += fractions[s]
        if u < acc:
            return s
    return chosen[-1]


def assign(
    sha256: str, source_split: str | None, source_splits: set[str], fractions: Mapping[str, float]
) -> str:
    """The split of one image.

    No source split: hash over all splits. Source ``val``/``test``: kept. Source ``train``: kept, except
    that splits the source lacks are carved out of it by hash (CIFAKE ships only ``train``).
    """
    if source_split is None:
        return pick(sha256, fractions, SPLITS)
    if source_split != "train":
        return source_split
    missing = [s for s in SPLITS if s not in source_splits]
    return pick(sha256, fractions, ["train", *missing])


def resolve_conflicts(splits_by_sha: dict[str, set[str]]) -> dict[str, str]:
    """Images found in several source splits go to the earliest (train < val < test): held-out stays clean."""
    return {sha: min(found, key=SPLITS.index) for sha, found in splits_by_sha.items() if len(found) > 1}
