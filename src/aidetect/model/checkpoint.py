"""Small, self-describing model checkpoints: a state dict plus the metadata needed to serve it.

A checkpoint is one ``torch.save`` file holding ``{"format", "meta", "state_dict"}``. ``meta`` carries at
least ``arch, num_classes, input_size, labels, mean, std`` and, once evaluated, ``threshold`` and
``dataset_version``, so :func:`load_checkpoint` can rebuild the network without any other file. With
``flip_average`` true in ``meta`` the rebuilt network averages each image with its mirror image.
Optimizer state for resuming lives elsewhere (``aidetect.model.train``), keeping ``model.pt`` small.
"""

from __future__ import annotations

import io
from typing import Any

import torch
from torch import nn

from aidetect import storage
from aidetect.errors import DataError
from aidetect.model.networks import build_model, with_flip_average

FORMAT = "aidetect-checkpoint/1"
REQUIRED_META = ("arch", "num_classes", "input_size", "labels", "mean", "std")


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under DistributedDataParallel / torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def _plain(value: Any) -> Any:
    """Meta values as plain Python (tuples -> lists, numpy scalars -> floats), safe for weights_only."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value


def check_meta(meta: dict[str, Any]) -> None:
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise DataError(f"checkpoint meta is missing {', '.join(missing)}")
    if len(meta["labels"]) != int(meta["num_classes"]):
        raise DataError(
            f"checkpoint meta: {len(meta['labels'])} labels but num_classes={meta['num_classes']}"
        )


def save_checkpoint(path: str, model: nn.Module, meta: dict[str, Any]) -> None:
    """Write ``model``'s weights and ``meta`` to ``path`` (local or ``s3://``) atomically."""
    meta = _plain(dict(meta))
    check_meta(meta)
    state = {k: v.detach().cpu().contiguous() for k, v in unwrap(model).state_dict().items()}
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "meta": meta, "state_dict": state}, buf)
    storage.write_bytes(str(path), buf.getvalue())


def read_checkpoint(path_or_uri: str) -> dict[str, Any]:
    """The raw checkpoint dict (``format``, ``meta``, ``state_dict``), validated."""
    data = storage.read_bytes(str(path_or_uri))
    try:
        ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt or foreign file
        raise DataError(f"{path_or_uri} is not an aidetect checkpoint: {exc}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise DataError(f"{path_or_uri} is not an aidetect checkpoint (format {FORMAT} expected)")
    check_meta(ckpt["meta"])
    return ckpt


def load_checkpoint(path_or_uri: str) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the network from ``path_or_uri`` (local or ``s3://``); returns ``(model.eval(), meta)``."""
    ckpt = read_checkpoint(path_or_uri)
    meta = ckpt["meta"]
    model = build_model(meta["arch"], int(meta["num_classes"]), int(meta["input_size"]))
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise DataError(f"{path_or_uri}: weights do not fit {meta['arch']}: {str(exc)[:200]}") from None
    return with_flip_average(model, bool(meta.get("flip_average"))).eval(), meta
