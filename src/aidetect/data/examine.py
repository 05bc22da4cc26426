"""Hash and inspect a stream of source images, in worker processes when there are many.

The first ``inline`` images are examined in-process (small sources never pay for a pool); after
that, chunks (at most ``chunk`` images or ``chunk_bytes``) go to a process pool with a window of
``2 * workers + 1`` chunks, so memory stays flat and order is kept.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor

from aidetect.data.imaging import ImageDecodeError, inspect_image
from aidetect.data.sources import SourceItem

Examined = tuple[str, dict[str, object] | None, str | None]  # sha256, image info, error


def examine(data: bytes, max_pixels: int, verify: bool) -> Examined:
    """``(sha256, {width, height, format, mode}, None)``, or ``(sha256, None, reason)`` if unusable."""
    sha = hashlib.sha256(data).hexdigest()
    try:
        return sha, inspect_image(data, max_pixels, verify), None
    except ImageDecodeError as exc:
        return sha, None, str(exc)


def _examine_chunk(args: tuple[list[bytes], int, bool]) -> list[Examined]:
    datas, max_pixels, verify = args
    return [examine(d, max_pixels, verify) for d in datas]


def _take(items: Iterator[SourceItem], max_items: int, max_bytes: int) -> list[SourceItem]:
    """The next items, up to ``max_items`` of them or ``max_bytes`` of image data."""
    batch: list[SourceItem] = []
    size = 0
    while len(batch) < max_items and size < max_bytes:
        item = next(items, None)
        if item is None:
            break
        batch.append(item)
        size += len(item.data)
    return batch


def worker_count(configured: int) -> int:
    """``configured`` workers, or every available core when it is 0."""
    if configured > 0:
        return configured
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def examine_stream(
    items: Iterator[SourceItem],
    max_pixels: int,
    verify: bool,
    workers: int = 0,
    inline: int = 2048,
    chunk: int = 512,
    chunk_bytes: int = 4 * 1024 * 1024,
) -> Iterator[tuple[SourceItem, Examined | None]]:
    """Yield ``(item, examined)`` in source order; ``examined`` is None for items that carry an error."""
    n_workers = worker_count(workers)
    for _ in range(inline if n_workers > 1 else -1):
        item = next(items, None)
        if item is None:
            return
        yield item, None if item.error else examine(item.data, max_pixels, verify)
    if n_workers <= 1:
        for item in items:
            yield item, None if item.error else examine(item.data, max_pixels, verify)
        return
    ctx = multiprocessing.get_context("spawn")  # no fork of a process that may hold boto3 threads
    window: deque[tuple[list[SourceItem], Future[list[Examined]]]] = deque()
    with ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx) as pool:
        while True:
            batch = _take(items, chunk, chunk_bytes)
            if batch:
                datas = [b"" if it.error else it.data for it in batch]
                window.append((batch, pool.submit(_examine_chunk, (datas, max_pixels, verify))))
            if window and (len(window) > 2 * n_workers or not batch):
                done_items, future = window.popleft()
                for item, examined in zip(done_items, future.result(), strict=True):
                    yield item, None if item.error else examined
            if not batch and not window:
                return
