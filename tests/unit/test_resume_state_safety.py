"""Resume state loads tensors and plain values only: a state.pt carrying pickled code is refused unrun."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from torch import nn

from aidetect.model.train import TrainingError, _Loop

RAN: list[str] = []


class _Payload:
    def __reduce__(self):  # what a hostile state.pt does: call a function while unpickling
        return (RAN.append, ("code ran",))


def test_a_state_file_with_pickled_code_is_refused_without_running_it(tmp_path: Path) -> None:
    state = tmp_path / "state.pt"
    torch.save({"model": {}, "progress": _Payload()}, state)
    model = nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    loop = _Loop(model, opt, sched, torch.amp.GradScaler("cuda", enabled=False), state, time.monotonic())
    with pytest.raises(TrainingError, match="cannot resume"):
        loop.restore()
    assert RAN == []
