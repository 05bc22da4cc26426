"""Cost of ``image_features`` per image (what the inference log adds per prediction).

    python bench/drift_features.py [--repeats 7] [--number 200]

Median over --repeats runs of --number calls, for a decoded 512 px JPEG (with its bytes, as the server
passes them), a 32 px CIFAKE-sized JPEG, and a 1024 px PNG. Single process, no warm caches beyond the
first call.
"""

from __future__ import annotations

import argparse
import io
import statistics
import timeit

import numpy as np
from PIL import Image, ImageFilter

from aidetect.data.features import image_features


def _image(size: int, fmt: str) -> tuple[Image.Image, bytes]:
    rng = np.random.default_rng(size)
    arr = (rng.random((size, size, 3)) * 255).astype(np.uint8)
    img = Image.fromarray(arr).filter(ImageFilter.GaussianBlur(1.0))
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    data = buf.getvalue()
    decoded = Image.open(io.BytesIO(data))
    decoded.load()
    return decoded.convert("RGB"), data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--number", type=int, default=200)
    args = parser.parse_args()
    print("| image | median µs per call | min µs |")
    print("|---|---:|---:|")
    for size, fmt in ((512, "JPEG"), (32, "JPEG"), (1024, "PNG")):
        img, data = _image(size, fmt)
        image_features(img, data)
        runs = timeit.repeat(
            lambda i=img, d=data: image_features(i, d), number=args.number, repeat=args.repeats
        )
        per = [r / args.number * 1e6 for r in runs]
        print(f"| {size} px {fmt} | {statistics.median(per):.0f} | {min(per):.0f} |")


if __name__ == "__main__":
    main()
