"""Import torchvision when its compiled ops cannot load (a CUDA wheel next to a CPU torch).

torchvision registers fake kernels for ``torchvision::nms``/``qnms`` at import time and dies
if the op schemas are missing. When ``torchvision._C`` cannot be loaded we define just those
schemas so that models and transforms work; detection ops stay unavailable.
Image decoding always goes through Pillow, never ``torchvision.io``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_lib = None  # keep the Library alive for the process lifetime


def _native_ops_load() -> bool:
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    pkg = Path(next(iter(spec.submodule_search_locations)))
    for so in sorted(pkg.glob("_C*.so")):
        try:
            torch.ops.load_library(str(so))
            return True
        except (OSError, RuntimeError):
            return False
    return False


def import_torchvision() -> ModuleType:
    """Return the ``torchvision`` module, defining missing op schemas first when needed."""
    global _lib
    if "torchvision" in sys.modules:
        return sys.modules["torchvision"]
    import torch

    if not _native_ops_load() and _lib is None:
        _lib = torch.library.Library("torchvision", "DEF")
        for schema in _SCHEMAS:
            _lib.define(schema)
    import torchvision

    return torchvision
