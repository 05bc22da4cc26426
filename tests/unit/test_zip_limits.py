"""Zip members are inflated only up to a size and a compression-ratio cap (zip bombs are skipped, listed)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from aidetect.data import sources
from aidetect.data.config import DataConfig


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (8, 8, 3), np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _items(path: Path) -> dict[str, sources.SourceItem]:
    return {it.source: it for it in sources.open_source(str(path), DataConfig())}


def test_a_zip_bomb_member_is_refused_and_its_neighbours_still_read(tmp_path: Path) -> None:
    z = tmp_path / "bomb.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("train/REAL/ok.png", _png(1))
        zf.writestr("train/FAKE/bomb.png", b"\0" * (50 * 1024 * 1024))  # ~50 KB stored
        zf.writestr("train/FAKE/ok.png", _png(2))
    assert z.stat().st_size < 100_000
    items = _items(z)
    bomb = items["train/FAKE/bomb.png"]
    assert bomb.data == b"" and "above the limit" in (bomb.error or "")
    assert items["train/REAL/ok.png"].data == _png(1) and items["train/FAKE/ok.png"].error is None


def test_a_member_above_the_size_cap_is_refused_even_when_it_is_stored(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sources, "ZIP_MEMBER_MAX_BYTES", 1000)
    z = tmp_path / "big.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("train/REAL/big.bmp", b"B" * 5000)  # ratio 1: only the size cap can refuse it
        zf.writestr("train/REAL/small.png", b"x" * 900)
    items = _items(z)
    assert "5000 bytes" in (items["train/REAL/big.bmp"].error or "")
    assert items["train/REAL/small.png"].data == b"x" * 900
