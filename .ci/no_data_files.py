#!/usr/bin/env python3
"""Refuse data sets and model weights in a commit (pre-commit hook; see CONTRIBUTING.md).

Data lives in ../shared/datasets or object storage and models in MLflow; a weights file or a data
archive in git bloats every clone for good, and the data sets' terms (NOTICE) forbid redistributing
most of them. Usage: no_data_files.py FILE... ; exit status 1 and one line per refused file.
"""

from __future__ import annotations

import sys
from pathlib import Path

MB = 1024 * 1024
MAX_BYTES = 5 * MB
MAX_IMAGE_BYTES = 256 * 1024

WEIGHTS = {".pt", ".pth", ".ckpt", ".onnx", ".safetensors", ".h5", ".pb", ".tflite", ".pkl", ".pickle"}
WEIGHTS |= {".joblib", ".npy", ".npz", ".gguf", ".bin"}
DATA = {".parquet", ".arrow", ".feather", ".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".zst"}
DATA |= {".tfrecord", ".db", ".sqlite", ".sqlite3", ".lance"}
IMAGES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".avif", ".heic"}


def refusal(path: Path) -> str | None:
    """Why ``path`` must not be committed, or None when it may be."""
    suffix = path.suffix.lower()
    if suffix in WEIGHTS:
        return "model weights or arrays belong in the MLflow registry or object storage"
    if suffix in DATA:
        return "data sets and archives belong in ../shared/datasets or object storage"
    try:
        size = path.stat().st_size
    except FileNotFoundError:  # deleted in this commit
        return None
    if suffix in IMAGES and size > MAX_IMAGE_BYTES:
        return f"image of {size / 1024:.0f} KiB (limit {MAX_IMAGE_BYTES // 1024} KiB): tests make theirs"
    if size > MAX_BYTES:
        return f"{size / MB:.1f} MB (limit {MAX_BYTES // MB} MB)"
    return None


def main(argv: list[str]) -> int:
    refused = [(name, why) for name in argv if (why := refusal(Path(name))) is not None]
    for name, why in refused:
        print(f"refusing {name}: {why}", file=sys.stderr)
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
