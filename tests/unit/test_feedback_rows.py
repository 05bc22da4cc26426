"""Which rows an epoch (and the checkpoint choice) sees of a grown version: caps cut base rows only."""

from __future__ import annotations

import numpy as np
import pandas as pd

from aidetect.model.data import SplitData
from aidetect.model.train import _with_feedback


def _split(n_base: int, n_feedback: int, provenance: bool = True) -> SplitData:
    names = [f"b{i}" for i in range(n_base)] + [f"f{i}" for i in range(n_feedback)]
    rows = pd.DataFrame(
        {"sha256": names, "label": ["REAL", "FAKE"] * (len(names) // 2) + ["REAL"] * (len(names) % 2)}
    )
    if provenance:
        rows["provenance"] = ["base"] * n_base + ["feedback"] * n_feedback
    return SplitData([n.encode() for n in names], np.arange(len(names)) % 2, rows)


def test_a_cap_cuts_base_rows_and_keeps_every_feedback_row_repeated() -> None:
    out = _with_feedback(_split(100, 7), cap=20, repeat=3)
    prov = out.rows["provenance"]
    assert (prov == "base").sum() == 20
    assert sorted(out.rows.loc[prov == "feedback", "sha256"]) == sorted([f"f{i}" for i in range(7)] * 3)
    # images, targets and rows stay aligned
    assert [i.decode() for i in out.images] == list(out.rows["sha256"])


def test_the_cap_is_spread_over_the_base_rows_not_their_head() -> None:
    out = _with_feedback(_split(100, 2), cap=10, repeat=1)
    base = out.rows.loc[out.rows["provenance"] == "base", "sha256"].tolist()
    assert base[0] == "b0" and base[-1] == "b99"


def test_without_feedback_rows_the_cap_is_plain() -> None:
    assert len(_with_feedback(_split(50, 0), cap=10, repeat=5)) == 10
    assert len(_with_feedback(_split(50, 0, provenance=False), cap=10, repeat=5)) == 10
    assert len(_with_feedback(_split(50, 4), cap=0, repeat=1)) == 54  # 0: no cap
