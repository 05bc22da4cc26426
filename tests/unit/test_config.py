"""One config rule for every concern: file < layers < AIDETECT_<CONCERN>__<FIELD> (YAML) < overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from aidetect import config
from aidetect.data.config import load_data_config
from aidetect.errors import ConfigError


@dataclass
class Knobs:
    name: str = ""
    rate: float = 0.0
    tags: list[str] = field(default_factory=list)
    per_label: dict[str, list[str]] = field(default_factory=dict)
    limit: int | None = None


def test_env_values_parse_as_yaml_so_lists_and_numbers_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIDETECT_DATA__LABELS", "[real, ai-generated, deepfake]")
    monkeypatch.setenv("AIDETECT_DATA__REAL_LABEL", "real")
    cfg = load_data_config()
    assert cfg.labels == ["real", "ai-generated", "deepfake"] and cfg.real_label == "real"


def test_string_fields_keep_the_text_and_nested_env_fields_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIDETECT_KNOBS__NAME", "yes")  # YAML would make it a bool: a name stays text
    monkeypatch.setenv("AIDETECT_KNOBS__RATE", "0.25")
    monkeypatch.setenv("AIDETECT_KNOBS__TAGS", "a,b")
    monkeypatch.setenv("AIDETECT_KNOBS__PER_LABEL__REAL", "[photo, camera]")
    monkeypatch.setenv("AIDETECT_KNOBS__LIMIT", "null")
    cfg = config.load(Knobs, "knobs", path=_yaml(tmp_path / "k.yaml", "limit: 3\n"))
    assert cfg == Knobs(name="yes", rate=0.25, tags=["a", "b"], per_label={"real": ["photo", "camera"]})


def test_layers_sit_between_the_file_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = _yaml(tmp_path / "base.yaml", "name: base\nrate: 0.1\n")
    preset = _yaml(tmp_path / "preset.yaml", "name: preset\nrate: 0.2\n")
    monkeypatch.setenv("AIDETECT_KNOBS__RATE", "0.3")
    cfg = config.load(Knobs, "knobs", path=base, layers=[preset, {"tags": ["x"]}], overrides={"name": "flag"})
    assert (cfg.name, cfg.rate, cfg.tags) == ("flag", 0.3, ["x"])


def test_bad_environment_values_name_the_field(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIDETECT_KNOBS__RATE", "[unclosed")
    with pytest.raises(ConfigError, match="rate: environment value"):
        config.load(Knobs, "knobs", path=_yaml(tmp_path / "k.yaml", "{}\n"))
    monkeypatch.setenv("AIDETECT_KNOBS__RATE", "fast")
    with pytest.raises(ConfigError, match="rate: expected float"):
        config.load(Knobs, "knobs", path=_yaml(tmp_path / "k.yaml", "{}\n"))


def _yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _presets() -> list[str]:
    from aidetect.model.config import available_presets

    return available_presets()


@pytest.mark.parametrize("preset", _presets())
def test_every_shipped_training_preset_loads_and_its_network_answers(preset: str) -> None:
    import torch

    from aidetect.model.config import load_train_config
    from aidetect.model.networks import build_model

    cfg = load_train_config(preset)
    cfg.preprocess.resolved(cfg.input_size)
    net = build_model(cfg.arch, 2, cfg.input_size).eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 3, cfg.input_size, cfg.input_size)).shape == (1, 2)
