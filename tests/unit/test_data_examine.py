"""Hashing/inspection in worker processes gives the same answers, in order, as in-process."""

from __future__ import annotations

import hashlib

from aidetect.data.examine import examine, examine_stream
from aidetect.data.sources import SourceItem
from tests.unit.test_data_versions import png


def _items() -> list[SourceItem]:
    items = [SourceItem(f"REAL/{i}.png", "REAL", None, png(i, size=12 + i % 5)) for i in range(23)]
    items[5] = SourceItem("REAL/bad.png", "REAL", None, b"garbage")
    items[9] = SourceItem("REAL/unreadable.png", "REAL", None, b"", error="unreadable zip member")
    return items


def test_pool_matches_inline_and_keeps_order() -> None:
    inline = list(examine_stream(iter(_items()), 10_000, True, workers=1))
    pooled = list(examine_stream(iter(_items()), 10_000, True, workers=2, inline=4, chunk=3))
    by_bytes = list(examine_stream(iter(_items()), 10_000, True, workers=2, inline=0, chunk_bytes=1500))
    assert by_bytes == inline
    assert [i.source for i, _ in pooled] == [i.source for i in _items()]
    assert pooled == inline
    sha, info, err = pooled[0][1]
    assert sha == hashlib.sha256(png(0, size=12)).hexdigest() and info["width"] == 12 and err is None
    assert pooled[5][1][1] is None and "not a recognised image" in pooled[5][1][2]
    assert pooled[9][1] is None
    assert pooled[22][1][1]["height"] == 12 + 22 % 5


def test_examine_refuses_oversized_images() -> None:
    _, info, err = examine(png(1, size=64), max_pixels=1000, verify=True)
    assert info is None and "above the limit" in err
