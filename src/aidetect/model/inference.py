"""Torch forward passes for evaluation, validation and ONNX parity: one loop, softmax probabilities."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch
from torch import nn

CPU = torch.device("cpu")


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    """Mixed precision where it pays: bf16 (or fp16) on CUDA, bf16 on CPUs with native bf16."""
    if not enabled:
        return contextlib.nullcontext()
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast("cpu", dtype=torch.bfloat16)


@torch.no_grad()
def predict_probs(
    model: nn.Module, loader: Any, device: torch.device = CPU, amp: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax probabilities ``[N, C]`` and targets for every ``(x, y)`` batch of ``loader``, in order."""
    model.eval()
    probs, targets = [], []
    for x, y in loader:
        x = x.to(device, non_blocking=True)
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, amp):
            logits = model(x)
        probs.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
        targets.append(np.asarray(y))
    if not probs:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    return np.concatenate(probs), np.concatenate(targets)


def predict_images(
    model: nn.Module, loader: Any, device: torch.device = CPU, amp: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Per-image probabilities ``[N, C]`` and targets: :func:`predict_probs`, then the loader's
    ``regroup`` (a crops loader folds its crop rows into one row per image) where it has one."""
    probs, targets = predict_probs(model, loader, device, amp)
    regroup = getattr(loader, "regroup", None)
    return regroup(probs, targets) if regroup is not None else (probs, targets)


def predict_array(model: nn.Module, x: np.ndarray, batch: int = 64) -> np.ndarray:
    """Softmax probabilities for a ready float32 model input ``[N, 3, S, S]`` (ONNX parity checks)."""
    tensor = torch.from_numpy(x)
    batches = ((tensor[i : i + batch], np.zeros(len(tensor[i : i + batch]))) for i in range(0, len(x), batch))
    return predict_probs(model, batches)[0]
