"""A deterministic, SYNTHETIC real-vs-fake image set for the embedded demo and for tests.

Nothing here is a real photograph or a real generator's output. Every image is a random scene
(a colour gradient plus a few ellipses and boxes) drawn from one distribution for all classes, so
colour statistics are shared. Classes differ only in *traces* of how the pixels were made:

- ``real`` (first label): rendered at full resolution with sharp edges, then independent per-pixel
  sensor noise.
- ``upsampled`` fakes (second label): rendered at half resolution with noise, then upsampled 2x
  (bilinear or nearest) and given a faint periodic checkerboard, as transposed-convolution decoders
  leave: spatially correlated noise, over-smooth edges, a period-2 pattern.
- ``spliced`` fakes (third label, e.g. ``deepfake``): a real-style image with one region replaced by
  an over-smooth, upsampled patch, the trace of a face swap.

A detector has to look at neighbouring pixels (local correlation, periodicity); no single pixel
value or global colour statistic separates the classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from aidetect.errors import ConfigError

STYLES = ("upsampled", "spliced")


def _scene(rng: np.random.Generator) -> dict[str, np.ndarray | list]:
    """Resolution-independent scene parameters (coordinates in [0, 1])."""
    shapes = []
    for _ in range(int(rng.integers(1, 5))):
        shapes.append(
            {
                "kind": "ellipse" if rng.random() < 0.6 else "box",
                "centre": rng.uniform(0.1, 0.9, 2),
                "radius": rng.uniform(0.08, 0.35, 2),
                "colour": rng.uniform(0, 255, 3),
            }
        )
    return {
        "c0": rng.uniform(0, 255, 3),
        "c1": rng.uniform(0, 255, 3),
        "angle": rng.uniform(0, 2 * np.pi),
        "shapes": shapes,
    }


def _render(scene: dict, res: int) -> np.ndarray:
    """Render the scene at ``res`` x ``res`` as float RGB (hard edges, no anti-aliasing)."""
    coords = (np.arange(res) + 0.5) / res
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    t = (np.cos(scene["angle"]) * (xx - 0.5) + np.sin(scene["angle"]) * (yy - 0.5)) + 0.5
    t = np.clip(t, 0, 1)[..., None]
    img = scene["c0"] * (1 - t) + scene["c1"] * t
    for s in scene["shapes"]:
        dy, dx = (yy - s["centre"][0]) / s["radius"][0], (xx - s["centre"][1]) / s["radius"][1]
        mask = dx**2 + dy**2 <= 1 if s["kind"] == "ellipse" else (np.abs(dx) <= 1) & (np.abs(dy) <= 1)
        img[mask] = s["colour"]
    return img


def _real(scene: dict, size: int, rng: np.random.Generator) -> np.ndarray:
    img = _render(scene, size)
    return img + rng.normal(0, rng.uniform(4, 9), img.shape)


def _upsampled(scene: dict, size: int, rng: np.random.Generator) -> np.ndarray:
    half = max(2, size // 2)
    low = _render(scene, half) + rng.normal(0, rng.uniform(4, 9), (half, half, 3))
    resample = Image.Resampling.BILINEAR if rng.random() < 0.7 else Image.Resampling.NEAREST
    channels = [
        np.asarray(Image.fromarray(low[..., c].astype(np.float32), mode="F").resize((size, size), resample))
        for c in range(3)
    ]
    img = np.stack(channels, axis=-1)
    checker = np.indices((size, size)).sum(axis=0) % 2 * 2 - 1
    img = img * (1 + rng.uniform(0.015, 0.04) * checker[..., None])
    return img + rng.normal(0, 1.0, img.shape)  # faint: fakes are over-smooth, not noise-free


def _spliced(scene: dict, size: int, rng: np.random.Generator) -> np.ndarray:
    img = _real(scene, size, rng)
    patch = _upsampled(_scene(rng), size, rng)
    cy, cx = rng.uniform(0.3, 0.7, 2) * size
    ry, rx = rng.uniform(0.2, 0.35, 2) * size
    yy, xx = np.indices((size, size))
    mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    img[mask] = patch[mask]
    return img


def render_image(label_index: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One uint8 RGB image for class ``label_index`` (0 = real, 1.. = fake styles in turn)."""
    scene = _scene(rng)
    if label_index == 0:
        img = _real(scene, size, rng)
    elif STYLES[(label_index - 1) % len(STYLES)] == "upsampled":
        img = _upsampled(scene, size, rng)
    else:
        img = _spliced(scene, size, rng)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def generate_demo(
    out_dir: str | Path,
    n_per_class: int = 300,
    size: int = 32,
    seed: int = 0,
    labels: Sequence[str] = ("REAL", "FAKE"),
) -> Path:
    """Write ``out_dir/<label>/<label>_NNNNN.png`` for every label; the same arguments give the same bytes.

    The first label is the real class; the others are fakes with different generator traces.
    """
    if len(labels) < 2:
        raise ConfigError("labels: the demo needs a real label and at least one fake label")
    if n_per_class < 1 or size < 8:
        raise ConfigError("n_per_class must be >= 1 and size >= 8")
    out = Path(out_dir)
    for k, label in enumerate(labels):
        folder = out / label
        folder.mkdir(parents=True, exist_ok=True)
        stem = label.lower().replace(" ", "_")
        for i in range(n_per_class):
            rng = np.random.default_rng([seed, k, i])
            pixels = render_image(k, size, rng)
            Image.fromarray(pixels, "RGB").save(folder / f"{stem}_{i:05d}.png", optimize=False)
    return out
