"""The training pipeline compiles for the text modality too: the steps call aidetect.flows, which
dispatch on the data (a text file ingests as a text version) and the preset (a text architecture), so
one pipeline definition serves both; here it is compiled with text defaults."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipelines import config as pconfig
from pipelines.compile import compile_pipeline

REPO = Path(__file__).resolve().parents[2]
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


def _ir(name: str, cfg: pconfig.PipelineConfig, out: Path) -> tuple[dict, str]:
    text = compile_pipeline(name, cfg, out).read_text()
    return next(yaml.safe_load_all(text)), text


def test_the_text_preset_selects_the_modality_of_the_same_pipeline(tmp_path: Path) -> None:
    """configs/pipeline-text.yaml (the text preset): the same tasks and components as the image
    pipeline, text defaults (preset tfidf_lr, model aidetect-text), and a train step without a GPU."""
    text_cfg = pconfig.load(str(REPO / "configs" / "pipeline-text.yaml"))
    image, image_yaml = _ir("training", pconfig.load(), tmp_path / "image.yaml")
    text, text_yaml = _ir("training", text_cfg, tmp_path / "text.yaml")
    assert set(text["root"]["dag"]["tasks"]) == set(image["root"]["dag"]["tasks"])
    assert text["components"] == image["components"]  # one pipeline: only defaults and placement differ
    params = text["root"]["inputDefinitions"]["parameters"]
    assert (params["preset"]["defaultValue"], params["model_name"]["defaultValue"]) == (
        "tfidf_lr",
        "aidetect-text",
    )
    assert "nvidia.com/gpu" in image_yaml and "nvidia.com/gpu" not in text_yaml
    monitoring, _ = _ir("monitoring", text_cfg, tmp_path / "monitoring.yaml")
    assert (
        monitoring["root"]["inputDefinitions"]["parameters"]["model_name"]["defaultValue"] == "aidetect-text"
    )
