"""A warm-started run with ``distill`` stays closer to the model it started from than one without.

The retrain sees the champion's own images with every label swapped: hard labels alone pull the network
away from the champion; distillation on those (base) rows must hold it back."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from aidetect import flows
from aidetect.data.demo import generate_demo
from aidetect.model.checkpoint import load_checkpoint
from aidetect.model.config import load_train_config
from aidetect.model.data import load_split
from aidetect.model.evaluate import predict
from aidetect.model.train import _teacher

STEP = {"epochs": 1, "batch_size": 8, "track": False, "lr": 0.005}


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory) -> tuple[flows.DatasetRef, flows.DatasetRef, Path]:
    """A demo version, the same images with REAL and FAKE swapped, and a champion trained on the first."""
    tmp = tmp_path_factory.mktemp("distill")
    src = generate_demo(tmp / "demo", n_per_class=40, size=32, seed=5)
    for d in src.iterdir():
        if d.is_dir():
            shutil.copytree(d, tmp / "swapped" / {"REAL": "FAKE", "FAKE": "REAL"}[d.name])
    stores = flows.Stores(datasets_root=str(tmp / "ds"))
    dataset = flows.ingest(str(src), stores).dataset
    swapped = flows.ingest(str(tmp / "swapped"), stores).dataset
    over = {"epochs": 4, "batch_size": 8, "track": False}
    flows.train(dataset, stores, tmp / "champ", preset="ci-tiny", overrides=over)
    return dataset, swapped, tmp / "champ" / "model.pt"


def _fake_probs(model_path: Path, dataset: flows.DatasetRef) -> np.ndarray:
    model, meta = load_checkpoint(str(model_path))
    return predict(model, meta, load_split(dataset.open(), "train"), 64)[:, 1]


def test_distillation_keeps_the_outputs_of_the_warm_start_model(
    champion: tuple[flows.DatasetRef, flows.DatasetRef, Path], tmp_path: Path
) -> None:
    dataset, swapped, champ = champion
    stores = flows.Stores(datasets_root=dataset.root)
    before = _fake_probs(champ, dataset)
    drift: dict[float, float] = {}
    for weight in (0.0, 5.0):
        out = tmp_path / f"w{weight}"
        over = {**STEP, "distill": weight}
        flows.train(swapped, stores, out, preset="ci-tiny", overrides=over, init_from=champ)
        drift[weight] = float(np.abs(_fake_probs(out / "model.pt", dataset) - before).mean())
    assert drift[5.0] < 0.7 * drift[0.0], drift


def test_no_teacher_for_another_network(
    champion: tuple[flows.DatasetRef, flows.DatasetRef, Path], caplog: pytest.LogCaptureFixture
) -> None:
    _, _, champ = champion
    cfg = load_train_config("ci-tiny", None, {"arch": "compact", "distill": 1.0})
    with caplog.at_level(logging.WARNING, logger="aidetect.model.train"):
        assert _teacher(str(champ), cfg, ["REAL", "FAKE"], torch.device("cpu")) is None
    assert "no distillation" in caplog.text and "arch" in caplog.text
