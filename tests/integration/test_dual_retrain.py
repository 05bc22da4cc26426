"""A thumbnail champion grows into a dual network: its weights become the thumbnail branch (so the
challenger starts out answering exactly as the champion on thumbnails), it is the teacher on the base
rows, and the native branch learns from full-size images, through the same training, prediction and
export as any model."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from aidetect import flows
from aidetect.data.demo import generate_demo
from aidetect.model.checkpoint import load_checkpoint, read_checkpoint
from aidetect.model.config import load_train_config
from aidetect.model.data import load_split
from aidetect.model.evaluate import predict
from aidetect.model.lineage import read_json
from aidetect.model.networks import DualNet, build_model
from aidetect.model.train import _teacher, warm_start

DUAL = {
    "arch": "dual_s",
    "input_size": 256,
    "preprocess": {"mode": "crops", "crop": 256, "grid": 1, "max_crops": 1, "enlarge": True},
    "track": False,
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[flows.DatasetRef, flows.DatasetRef, Path]:
    """32 px demo data, a compact_l champion trained on it, and a version with 288 px images added."""
    tmp = tmp_path_factory.mktemp("dual")
    stores = flows.Stores(datasets_root=str(tmp / "ds"))
    small = generate_demo(tmp / "small", n_per_class=30, size=32, seed=11)
    base = flows.ingest(str(small), stores).dataset
    over = {"arch": "compact_l", "epochs": 1, "batch_size": 8, "track": False}
    flows.train(base, stores, tmp / "champ", preset="ci-tiny", overrides=over)
    mixed = tmp / "mixed"
    shutil.copytree(small, mixed)
    large = generate_demo(tmp / "large", n_per_class=12, size=288, seed=12)
    for d in large.iterdir():
        for f in d.iterdir():
            shutil.copy(f, mixed / d.name / f"large_{f.name}")
    return base, flows.ingest(str(mixed), stores).dataset, tmp / "champ" / "model.pt"


def test_the_champion_becomes_the_thumbnail_branch_and_answers_as_before(
    setup: tuple[flows.DatasetRef, flows.DatasetRef, Path],
) -> None:
    base, _, champ = setup
    meta = read_checkpoint(str(champ))["meta"]
    cfg = load_train_config("ci-tiny", None, {**DUAL, "mean": meta["mean"], "std": meta["std"]})
    model = build_model(cfg.arch, 2, cfg.input_size).eval()
    done = warm_start(model, str(champ), cfg, list(meta["labels"]))
    assert done["warm_start"] is True and done["warm_start_into"] == "thumb"
    dual_meta = {**meta, "arch": "dual_s", "input_size": 256, "preprocess": cfg.preprocess.to_meta()}
    data = load_split(base.open(), "test")
    champion, champion_meta = load_checkpoint(str(champ))
    want = predict(champion, champion_meta, data, 32)
    got = predict(model, dual_meta, data, 32)
    assert np.allclose(got, want, atol=1e-5)
    teacher = _teacher(str(champ), cfg, list(meta["labels"]), torch.device("cpu"))
    assert teacher is not None
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        enlarged = x.repeat_interleave(8, 2).repeat_interleave(8, 3)
        assert torch.allclose(teacher(enlarged), champion.eval()(x), atol=1e-5)


def test_a_champion_normalised_otherwise_is_not_warm_started_into_the_branch(
    setup: tuple[flows.DatasetRef, flows.DatasetRef, Path],
) -> None:
    _, _, champ = setup
    meta = read_checkpoint(str(champ))["meta"]
    cfg = load_train_config("ci-tiny", None, {**DUAL, "mean": [0.1, 0.2, 0.3], "std": meta["std"]})
    done = warm_start(build_model("dual_s", 2, 256), str(champ), cfg, list(meta["labels"]))
    assert done["warm_start"] is False and "arch 'compact_l' != 'dual_s'" in done["warm_start_refused"]


def test_a_dual_retrain_trains_predicts_and_keeps_its_preprocessing(
    setup: tuple[flows.DatasetRef, flows.DatasetRef, Path], tmp_path: Path
) -> None:
    _, mixed, champ = setup
    meta = read_checkpoint(str(champ))["meta"]
    stores = flows.Stores(datasets_root=mixed.root)
    over = {**DUAL, "mean": meta["mean"], "std": meta["std"], "epochs": 1, "batch_size": 8, "distill": 1.0}
    flows.train(mixed, stores, tmp_path / "dual", preset="ci-tiny", overrides=over, init_from=str(champ))
    assert read_json(tmp_path / "dual" / "config.json")["warm_start_into"] == "thumb"
    model, dual_meta = load_checkpoint(str(tmp_path / "dual" / "model.pt"))
    assert isinstance(model.module if hasattr(model, "module") else model, DualNet)
    assert dual_meta["preprocess"]["enlarge"] is True
    probs = predict(model, dual_meta, load_split(mixed.open(), "test"), 16)
    assert probs.shape[1] == 2 and np.allclose(probs.sum(1), 1, atol=1e-5)
