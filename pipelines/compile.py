"""Compile the pipelines to KFP IR YAML (``pipelines/compiled/`` holds the committed copies)."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from kfp import compiler

from pipelines.config import PipelineConfig
from pipelines.monitoring import build_monitoring_pipeline
from pipelines.training import build_training_pipeline

COMPILED_DIR = Path(__file__).resolve().parent / "compiled"

BUILDERS: dict[str, Callable[[PipelineConfig], Any]] = {
    "training": build_training_pipeline,
    "monitoring": build_monitoring_pipeline,
}


_DEFAULT_LINE = re.compile(r"^(#\s+(\w+): \w+ \[Default: ).*(\])$")


def _stable_header(text: str) -> str:
    """kfp's header comment prints dict defaults in protobuf map order, which varies between processes:
    print them as sorted JSON so the committed YAML is reproducible."""
    defaults = next(yaml.safe_load_all(text))["root"].get("inputDefinitions", {}).get("parameters", {})
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if not line.startswith("#"):
            break
        m = _DEFAULT_LINE.match(line)
        if m and m.group(2) in defaults:
            value = json.dumps(defaults[m.group(2)].get("defaultValue"), sort_keys=True)
            lines[i] = f"{m.group(1)}{value}{m.group(3)}"
    return "\n".join(lines)


def compile_pipeline(name: str, cfg: PipelineConfig, out_path: str | Path) -> Path:
    """Compile pipeline ``name`` with ``cfg`` to ``out_path`` (written atomically)."""
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".yaml", dir=out.parent)
    os.close(fd)
    try:
        compiler.Compiler().compile(BUILDERS[name](cfg), package_path=tmp)
        text = Path(tmp).read_text()
        Path(tmp).write_text(_stable_header(text))
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def compile_all(cfg: PipelineConfig, out_dir: str | Path = COMPILED_DIR) -> list[Path]:
    """Compile every pipeline into ``out_dir`` as ``<name>.yaml``."""
    return [compile_pipeline(name, cfg, Path(out_dir) / f"{name}.yaml") for name in BUILDERS]
