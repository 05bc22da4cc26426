"""A compact byte-level CNN, trained from scratch and exported to ONNX (``ids -> probabilities``).

Padding is masked out twice (after the first convolution and before the global max pool), so a text's
probabilities do not depend on how long the other texts of its batch are: the server's batches and the
evaluation's batches give the same answer.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from aidetect.data.text.encode import INPUT_NAME, OUTPUT_NAME, encode_ids

log = logging.getLogger(__name__)
VOCAB = 257  # byte + 1, 0 = padding


@dataclass
class CnnParams:
    embed: int = 32
    channels: int = 96
    kernel: int = 5
    max_len: int = 1024
    epochs: int = 6
    batch_size: int = 64
    lr: float = 2e-3
    max_seconds: float = 900.0
    seed: int = 0


class ByteCNN(nn.Module):
    def __init__(self, num_classes: int, p: CnnParams) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, p.embed, padding_idx=0)
        self.conv1 = nn.Conv1d(p.embed, p.channels, p.kernel, padding=p.kernel // 2)
        self.conv2 = nn.Conv1d(p.channels, p.channels, p.kernel, padding=2 * (p.kernel // 2), dilation=2)
        self.head = nn.Linear(2 * p.channels, num_classes)

    def logits(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids > 0).unsqueeze(1).to(torch.float32)  # [N, 1, L]
        h = self.embed(ids).transpose(1, 2)
        h = torch.relu(self.conv1(h)) * mask
        h = torch.relu(self.conv2(h))
        peak = (h - (1.0 - mask) * 1e4).amax(dim=2)
        mean = (h * mask).sum(dim=2) / mask.sum(dim=2).clamp(min=1.0)
        return self.head(torch.cat([peak, mean], dim=1))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(ids), dim=1)


def _batches(n: int, size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    order = rng.permutation(n) if rng is not None else np.arange(n)
    return [order[i : i + size] for i in range(0, n, size)]


def predict_torch(model: ByteCNN, texts: list[str], max_len: int, batch: int = 128) -> np.ndarray:
    model.eval()
    out = []
    with torch.inference_mode():
        for idx in _batches(len(texts), batch, None):
            ids = torch.from_numpy(encode_ids([texts[i] for i in idx], max_len, min_len=8))
            out.append(model(ids).numpy())
    return np.concatenate(out) if out else np.zeros((0, model.head.out_features), np.float32)


def train_cnn(
    texts: list[str],
    targets: np.ndarray,
    val_texts: list[str],
    val_targets: np.ndarray,
    score,
    p: CnnParams,
    num_classes: int,
) -> tuple[ByteCNN, list[dict[str, float]]]:
    """Train with Adam; keep the epoch with the best ``score(val_probs, val_targets)`` (higher is better)."""
    torch.manual_seed(p.seed)
    rng = np.random.default_rng(p.seed)
    model = ByteCNN(num_classes, p)
    opt = torch.optim.AdamW(model.parameters(), lr=p.lr, weight_decay=1e-4)
    counts = np.bincount(targets, minlength=num_classes).astype(np.float32)
    weights = torch.from_numpy(counts.sum() / np.maximum(counts, 1) / num_classes)
    loss_fn = nn.CrossEntropyLoss(weight=weights)
    steps = p.epochs * max(1, (len(texts) + p.batch_size - 1) // p.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=p.lr, total_steps=steps)
    # sort-ish by length inside shuffled chunks would be faster; plain shuffling keeps it simple
    history: list[dict[str, float]] = []
    best, best_state = -np.inf, None
    started = time.perf_counter()
    for epoch in range(p.epochs):
        model.train()
        total = 0.0
        for idx in _batches(len(texts), p.batch_size, rng):
            ids = torch.from_numpy(encode_ids([texts[i] for i in idx], p.max_len, min_len=8))
            loss = loss_fn(model.logits(ids), torch.from_numpy(targets[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        val = score(predict_torch(model, val_texts, p.max_len), val_targets) if len(val_texts) else 0.0
        history.append({"epoch": epoch + 1, "loss": total / max(1, len(texts)), "val_score": float(val)})
        log.info("byte_cnn epoch %d: loss %.4f val %.4f", epoch + 1, history[-1]["loss"], val)
        if val > best:
            best, best_state = val, {k: v.detach().clone() for k, v in model.state_dict().items()}
        if time.perf_counter() - started > p.max_seconds:
            log.warning("byte_cnn: stopped after %d epochs (max_seconds %.0f)", epoch + 1, p.max_seconds)
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.eval(), history


def export_cnn(model: ByteCNN, path: Path) -> Path:
    """TorchScript ONNX export with dynamic batch and length axes."""
    example = (torch.randint(1, VOCAB, (2, 64)),)
    axes = {INPUT_NAME: {0: "N", 1: "L"}, OUTPUT_NAME: {0: "N"}}
    torch.onnx.export(
        model.eval(),
        example,
        str(path),
        dynamo=False,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes=axes,
        opset_version=17,
    )
    return path
