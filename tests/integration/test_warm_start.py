"""Warm start: the champion's weights are loaded when the network matches, refused (and said) otherwise."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from aidetect import flows
from aidetect.data.demo import generate_demo
from aidetect.model.checkpoint import read_checkpoint
from aidetect.model.config import load_train_config
from aidetect.model.lineage import read_json
from aidetect.model.networks import build_model
from aidetect.model.train import warm_start

TINY = {"epochs": 1, "track": False}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[flows.DatasetRef, Path]:
    """A demo version and a model trained on it for one epoch (the champion to start from)."""
    tmp = tmp_path_factory.mktemp("warm")
    root = str(tmp / "ds")
    src = generate_demo(tmp / "demo", n_per_class=40, size=32, seed=3)
    dataset = flows.ingest(str(src), flows.Stores(datasets_root=root)).dataset
    flows.train(dataset, flows.Stores(datasets_root=root), tmp / "champ", preset="ci-tiny", overrides=TINY)
    return dataset, tmp / "champ" / "model.pt"


def test_weights_are_loaded_when_the_network_matches(trained: tuple[flows.DatasetRef, Path]) -> None:
    _, champ = trained
    cfg = load_train_config("ci-tiny", None, TINY)
    meta = read_checkpoint(str(champ))
    model = build_model(cfg.arch, 2, cfg.input_size)
    done = warm_start(model, str(champ), cfg, list(meta["meta"]["labels"]))
    assert done["warm_start"] is True
    for k, v in model.state_dict().items():
        assert torch.equal(v, meta["state_dict"][k]), k


def test_another_network_is_refused_and_announced(
    trained: tuple[flows.DatasetRef, Path], caplog: pytest.LogCaptureFixture
) -> None:
    _, champ = trained
    cfg = load_train_config("ci-tiny", None, {**TINY, "arch": "compact"})
    model = build_model(cfg.arch, 2, cfg.input_size)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    labels = list(read_checkpoint(str(champ))["meta"]["labels"])
    with caplog.at_level(logging.WARNING, logger="aidetect.model.train"):
        done = warm_start(model, str(champ), cfg, labels)
    assert done["warm_start"] is False and "arch 'compact_s' != 'compact'" in done["warm_start_refused"]
    assert "training from scratch" in caplog.text
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    swapped = warm_start(
        build_model("compact_s", 2, 32), str(champ), load_train_config("ci-tiny"), labels[::-1]
    )
    assert swapped["warm_start"] is False and "labels" in swapped["warm_start_refused"]


def test_train_flow_records_the_start_and_from_scratch_ignores_it(
    trained: tuple[flows.DatasetRef, Path], tmp_path: Path
) -> None:
    dataset, champ = trained
    stores = flows.Stores(datasets_root=dataset.root)
    flows.train(dataset, stores, tmp_path / "warm", preset="ci-tiny", overrides=TINY, init_from=str(champ))
    cfg = read_json(tmp_path / "warm" / "config.json")
    assert cfg["warm_start"] is True and cfg["init_from"] == str(champ)
    assert read_checkpoint(str(tmp_path / "warm" / "model.pt"))["meta"]["warm_start"] is True
    flows.train(
        dataset,
        stores,
        tmp_path / "cold",
        preset="ci-tiny",
        overrides=TINY,
        init_from=champ,
        from_scratch=True,
    )
    assert "init_from" not in read_json(tmp_path / "cold" / "config.json")


def test_cli_init_from_a_missing_checkpoint_is_a_clear_error(
    trained: tuple[flows.DatasetRef, Path], tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from aidetect.cli import main

    dataset, _ = trained
    args = ["train", "--data", dataset.version_id, "--preset", "ci-tiny", "--no-track", "--epochs", "1"]
    args += ["--out", str(tmp_path / "m"), "--init-from", str(tmp_path / "nope.pt")]
    res = CliRunner().invoke(main, args, env={"AIDETECT_DATASETS": dataset.root})
    assert res.exit_code != 0 and "no checkpoint there" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "m" / "state.pt").exists()
