"""One config object per concern: dataclasses loaded from ``configs/*.yaml``.

Precedence, lowest first: dataclass defaults < YAML file < layers (e.g. a training preset) < environment
(``AIDETECT_<CONCERN>__<FIELD>``, nested fields joined by ``__``; values parse as YAML, so
``[real, ai-generated]`` is a list and ``0.5`` a number) < explicit overrides (CLI flags). Every error
names the offending field.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from aidetect.errors import ConfigError

T = TypeVar("T")

CONFIG_DIR_ENV = "AIDETECT_CONFIG_DIR"


def config_dir() -> Path:
    """The folder holding the YAML configs: ``$AIDETECT_CONFIG_DIR`` or ``configs/`` in the repo."""
    env = os.environ.get(CONFIG_DIR_ENV)
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "configs"
        if candidate.is_dir() and (parent / "pyproject.toml").exists():
            return candidate
    return Path.cwd() / "configs"


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, turning parse errors into a ConfigError naming the file."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level, got {type(data).__name__}")
    return data


class _EnvText(str):
    """A value from the environment: parsed as YAML, except for fields that want the text itself."""


def _from_env(value: _EnvText, field: str) -> Any:
    try:
        return yaml.safe_load(str(value))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{field}: environment value {str(value)!r} is not valid YAML ({exc})") from None


def _coerce(value: Any, tp: Any, field: str) -> Any:
    """Convert ``value`` to type ``tp`` (str/int/float/bool/list/dict/Optional/dataclass)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if isinstance(value, _EnvText) and args[0] is not str:
            value = _from_env(value, field)
        if value is None:
            return None
        return _coerce(value, args[0], field)
    if isinstance(value, _EnvText):
        if tp is str:
            return str(value)
        value = _from_env(value, field)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{field}: expected a mapping")
        return build(tp, value, prefix=f"{field}.")
    if origin in (list, tuple):
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{field}: expected a list, got {value!r}")
        items = [_coerce(v, item_tp, f"{field}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{field}: expected a mapping, got {value!r}")
        (_, item_tp) = typing.get_args(tp) or (Any, Any)
        return {k: _coerce(v, item_tp, f"{field}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
            return value.lower() in {"1", "true", "yes", "on"}
        raise ConfigError(f"{field}: expected true/false, got {value!r}")
    if tp in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{field}: expected a number, got {value!r}")
        try:
            out = tp(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{field}: expected {tp.__name__}, got {value!r}") from None
        if tp is int and isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{field}: expected an integer, got {value!r}")
        return out
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{field}: expected a string, got {value!r}")
        return str(value)
    return value


def build(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and bad types by name."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]}: unknown field (known: {', '.join(sorted(fields))})")
    kwargs = {k: _coerce(v, hints[k], f"{prefix}{k}") for k, v in data.items()}
    try:
        obj = cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{prefix.rstrip('.') or cls.__name__}: {exc}") from None
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate()
    return obj


def _env_overrides(concern: str) -> dict[str, Any]:
    """Collect ``AIDETECT_<CONCERN>__A__B=value`` into ``{"a": {"b": value}}``."""
    head = f"AIDETECT_{concern.upper()}__"
    out: dict[str, Any] = {}
    for key, value in os.environ.items():
        if not key.startswith(head):
            continue
        parts = key[len(head) :].lower().split("__")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _EnvText(value)
    return out


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = _merge(merged[k], v)
        elif v is not None:
            merged[k] = v
    return merged


def load(
    cls: type[T],
    concern: str,
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    layers: typing.Sequence[dict[str, Any] | str | Path] = (),
) -> T:
    """Load the config for ``concern`` (``configs/<concern>.yaml`` unless ``path`` is given).

    ``layers`` (mappings or YAML files, e.g. a training preset) go over the file, under the environment."""
    file = Path(path) if path else config_dir() / f"{concern}.yaml"
    data = read_yaml(file) if (path or file.exists()) else {}
    for layer in layers:
        data = _merge(data, layer if isinstance(layer, dict) else read_yaml(layer))
    data = _merge(data, _env_overrides(concern))
    data = _merge(data, overrides or {})
    return build(cls, data, prefix="")
