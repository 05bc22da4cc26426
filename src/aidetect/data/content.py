"""Content classes derivable from file names (CIFAKE: ``<index> (<k>).jpg`` -> CIFAR-10 class k)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
_CIFAKE_NAME = re.compile(r"^\d+(?: \((\d+)\))?\.(?:jpe?g|png)$", re.IGNORECASE)


def cifake_class(source: str) -> str | None:
    """``train/FAKE/12 (3).jpg`` -> ``bird``; ``7.jpg`` -> ``airplane``; other names -> None."""
    m = _CIFAKE_NAME.match(PurePosixPath(source).name)
    if not m:
        return None
    k = int(m.group(1) or 1)
    return CIFAR10_CLASSES[k - 1] if 1 <= k <= len(CIFAR10_CLASSES) else None


def content_classes(sources: Sequence[str], mode: str) -> list[str | None]:
    """Content class per source path. ``auto`` applies the CIFAKE rule only when every name fits it
    and at least one carries a ``(k)`` marker (so plain numbered files are not called airplanes)."""
    if mode == "none" or not sources:
        return [None] * len(sources)
    derived = [cifake_class(s) for s in sources]
    if mode == "cifake":
        return derived
    looks_cifake = all(d is not None for d in derived) and any("(" in PurePosixPath(s).name for s in sources)
    return derived if looks_cifake else [None] * len(sources)
