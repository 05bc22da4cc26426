"""augment.clean_epochs: the clean warm-up epochs never become the chosen checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from aidetect import flows
from aidetect.data.demo import generate_demo
from aidetect.errors import ConfigError
from aidetect.model.checkpoint import read_checkpoint
from aidetect.model.config import load_train_config
from aidetect.model.lineage import read_json


def test_the_best_checkpoint_comes_after_the_clean_epochs(tmp_path: Path) -> None:
    root = str(tmp_path / "ds")
    src = generate_demo(tmp_path / "demo", n_per_class=24, size=32, seed=5)
    dataset = flows.ingest(str(src), flows.Stores(datasets_root=root)).dataset
    overrides = {"epochs": 3, "track": False, "augment": {"clean_epochs": 2}, "early_stopping_patience": 1}
    _, result = flows.train(
        dataset, flows.Stores(datasets_root=root), tmp_path / "run", preset="ci-tiny", overrides=overrides
    )
    history = read_json(tmp_path / "run" / "history.json")["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]  # no early stop counted in the clean epochs
    assert result.best_epoch == 3
    assert read_checkpoint(str(tmp_path / "run" / "model.pt"))["meta"]["epoch"] == 3


def test_clean_epochs_must_leave_epochs_to_learn_robustness() -> None:
    with pytest.raises(ConfigError, match=r"clean_epochs \(3\) must be below epochs \(3\)"):
        load_train_config("ci-tiny", None, {"epochs": 3, "augment": {"clean_epochs": 3}})
