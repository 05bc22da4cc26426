"""Distillation towards the warm-start model: which rows, and the loss itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from aidetect.errors import ConfigError
from aidetect.model.config import load_train_config
from aidetect.model.retain import Flagged, base_rows, distillation_loss


def test_only_rows_that_are_not_reviewer_labelled_are_distilled() -> None:
    rows = pd.DataFrame({"provenance": ["base", "feedback", "base", "feedback"]})
    assert base_rows(rows).tolist() == [True, False, True, False]
    assert base_rows(pd.DataFrame({"label": ["REAL", "FAKE"]})).tolist() == [True, True]  # not grown


def test_the_loss_is_zero_when_the_student_agrees_and_grows_with_disagreement() -> None:
    teacher = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 1.0]])
    mask = torch.tensor([True, True, True])
    assert float(distillation_loss(teacher.clone(), teacher, mask, 2.0)) == pytest.approx(0.0, abs=1e-6)
    near = distillation_loss(teacher + torch.tensor([[0.0, 0.5]]), teacher, mask, 2.0)
    far = distillation_loss(teacher + torch.tensor([[0.0, 3.0]]), teacher, mask, 2.0)
    assert 0 < float(near) < float(far)


def test_unmasked_rows_neither_count_nor_get_a_gradient() -> None:
    teacher = torch.tensor([[2.0, -1.0], [0.5, 0.3]])
    student = torch.tensor([[0.0, 0.0], [5.0, -5.0]], requires_grad=True)
    mask = torch.tensor([True, False])
    loss = distillation_loss(student, teacher, mask, 1.0)
    loss.backward()
    assert student.grad is not None
    assert torch.equal(student.grad[1], torch.zeros(2)) and student.grad[0].abs().sum() > 0
    moved = torch.tensor([[0.0, 0.0], [-9.0, 9.0]])
    assert float(distillation_loss(moved, teacher, mask, 1.0)) == pytest.approx(loss.item())
    assert float(distillation_loss(student, teacher, torch.tensor([False, False]), 1.0)) == 0.0


def test_flagged_items_carry_their_flag_and_forward_the_epoch() -> None:
    class Items:
        epoch = -1

        def __len__(self) -> int:
            return 2

        def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
            return torch.full((1,), float(i)), i

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch

    items = Items()
    flagged = Flagged(items, np.array([True, False]))
    assert flagged[1][1:] == (1, False) and flagged[0][2] is True
    flagged.set_epoch(3)
    assert items.epoch == 3
    with pytest.raises(ValueError, match="3 flags for 2 rows"):
        Flagged(items, np.ones(3, dtype=bool))


@pytest.mark.parametrize("field, value", [("distill", -1.0), ("distill_temperature", 0.0)])
def test_a_negative_weight_or_a_zero_temperature_is_a_config_error(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match="distill"):
        load_train_config("ci-tiny", None, {field: value})
