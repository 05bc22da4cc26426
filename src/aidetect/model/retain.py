"""Learning a new domain without forgetting the old one: distillation from the warm-start model.

A retrain on a grown version (base images plus a few hundred reviewer-labelled ones, repeated) moves the
network towards the new images, and with it the decisions on the base data drift: the gates then refuse the
challenger for a regression on the base test split. Keeping the student's outputs close to the champion's
on the *base* rows only (knowledge distillation, Hinton et al. 2015; "learning without forgetting", Li &
Hoiem 2016) holds the old behaviour in place while the feedback rows, free of that pull, teach the new.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

log = logging.getLogger(__name__)


def base_rows(rows: pd.DataFrame) -> np.ndarray:
    """``True`` for the rows distillation applies to: every row but the reviewer-labelled ones."""
    if "provenance" not in rows:
        return np.ones(len(rows), dtype=bool)
    return (rows["provenance"] != "feedback").to_numpy()


def make_teacher(model: nn.Module) -> nn.Module:
    """A frozen copy of ``model`` as it is now (right after the warm start): the champion's outputs."""
    teacher = copy.deepcopy(model).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


class Flagged(torch.utils.data.Dataset):
    """``dataset``'s ``(x, target)`` items with a third element: whether row ``i`` is distilled."""

    def __init__(self, dataset: Any, flags: np.ndarray) -> None:
        if len(flags) != len(dataset):
            raise ValueError(f"{len(flags)} flags for {len(dataset)} rows")
        self.dataset, self.flags = dataset, flags

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, bool]:
        x, y = self.dataset[i]
        return x, y, bool(self.flags[i])

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)


def distillation_loss(
    student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor, temperature: float
) -> torch.Tensor:
    """KL(teacher || student) at ``temperature`` over the masked rows, scaled by T^2 so its gradient
    keeps the size of the hard-label loss's whatever T; 0 when no row of the batch is masked."""
    if not bool(mask.any()):
        return student.new_zeros(())
    t = temperature
    log_p = F.log_softmax(student[mask].float() / t, dim=1)
    q = F.softmax(teacher[mask].float() / t, dim=1)
    return F.kl_div(log_p, q, reduction="batchmean") * (t * t)
