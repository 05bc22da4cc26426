"""The training pipeline compiles for the text modality too: the steps call aidetect.flows, which
dispatch on the data (a text file ingests as a text version) and the preset (a text architecture), so
one pipeline definition serves both; here it is compiled with text defaults."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipelines import config as pconfig
from pipelines.compile import compile_pipeline

TEXT_DEFAULTS = {"preset": "tfidf_lr", "model_name": "aidetect-text", "node_selector": {}, "tolerations": []}


def test_training_pipeline_compiles_with_text_defaults(tmp_path: Path) -> None:
    cfg = pconfig.load(overrides={"training": TEXT_DEFAULTS})
    out = compile_pipeline("training", cfg, tmp_path / "training-text.yaml")
    ir = next(yaml.safe_load_all(out.read_text()))
    params = ir["root"]["inputDefinitions"]["parameters"]
    assert params["preset"]["defaultValue"] == "tfidf_lr"
    assert params["model_name"]["defaultValue"] == "aidetect-text"
    assert "data_uri" in params and "defaultValue" not in params["data_uri"]
    tasks = ir["root"]["dag"]["tasks"]
    assert {"ingest", "validate", "train", "evaluate", "gate"} <= set(tasks)
