"""Map the class names found in a source (folder names, parquet labels) onto the configured label set."""

from __future__ import annotations

from collections.abc import Sequence

from aidetect.data.config import SPLIT_SYNONYMS, normalize_name
from aidetect.errors import ConfigError, DataError


class LabelMatcher:
    """Case-insensitive label lookup with synonyms; unknown names raise :class:`DataError`."""

    def __init__(self, labels: Sequence[str], synonyms: dict[str, list[str]] | None = None) -> None:
        self.labels = list(labels)
        self._lookup: dict[str, str] = {}
        for label in self.labels:
            self._add(label, label)
        for label, names in (synonyms or {}).items():
            target = self._canonical(label)
            if target is None:
                continue  # synonyms for labels outside this label set are ignored
            for name in names:
                self._add(name, target)

    def _canonical(self, label: str) -> str | None:
        key = normalize_name(label)
        return next((x for x in self.labels if normalize_name(x) == key), None)

    def _add(self, name: str, label: str) -> None:
        key = normalize_name(name)
        if self._lookup.get(key, label) != label:
            raise ConfigError(f"synonyms: {name!r} maps to both {self._lookup[key]} and {label}")
        self._lookup[key] = label

    def get(self, name: str) -> str | None:
        """The configured label for ``name``, or None when it is not a known class name."""
        return self._lookup.get(normalize_name(name))

    def match(self, name: str, where: str) -> str:
        """The configured label for ``name``; ``where`` names the place in the source for the error."""
        label = self.get(name)
        if label is None:
            raise DataError(
                f"unknown class {name!r} in {where} (labels: {', '.join(self.labels)})",
                hint="rename it, or add a synonym under 'synonyms' in configs/data.yaml",
            )
        return label


def split_of(name: str) -> str | None:
    """``"Training"`` -> ``"train"``; None when ``name`` is not a split folder name."""
    key = normalize_name(name)
    return next((split for split, names in SPLIT_SYNONYMS.items() if key in names), None)
