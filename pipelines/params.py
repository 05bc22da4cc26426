"""Pipeline parameters: parse ``--param name=value`` and check them against a pipeline's signature."""

from __future__ import annotations

import json
from typing import Any

from kfp.pipeline_spec import pipeline_spec_pb2

from aidetect.errors import ConfigError

_TYPES = pipeline_spec_pb2.ParameterType.ParameterTypeEnum


def _convert(name: str, raw: str, ptype: int) -> Any:
    """Turn the command-line string ``raw`` into the parameter's declared type."""
    if ptype == _TYPES.STRING:
        return raw
    if ptype == _TYPES.BOOLEAN:
        low = raw.strip().lower()
        if low in {"true", "1", "yes"}:
            return True
        if low in {"false", "0", "no"}:
            return False
        raise ConfigError(f"pipeline parameter '{name}': expected true/false, got {raw!r}")
    if ptype == _TYPES.NUMBER_INTEGER:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"pipeline parameter '{name}': expected an integer, got {raw!r}") from None
    if ptype == _TYPES.NUMBER_DOUBLE:
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"pipeline parameter '{name}': expected a number, got {raw!r}") from None
    want = dict if ptype == _TYPES.STRUCT else list
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise ConfigError(
            f"pipeline parameter '{name}': expected JSON {want.__name__}, got {raw!r}"
        ) from None
    if not isinstance(value, want):
        raise ConfigError(f"pipeline parameter '{name}': expected JSON {want.__name__}, got {raw!r}")
    return value


def parse_assignments(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a malformed item is a ConfigError."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--param: expected NAME=VALUE, got {item!r}")
        out[name.strip()] = value
    return out


def resolve_arguments(pipeline: Any, raw: dict[str, Any]) -> dict[str, Any]:
    """Check ``raw`` against ``pipeline``'s parameters: unknown or missing ones are one-line ConfigErrors.

    String values are converted to the declared type; other values are passed through.
    """
    params = pipeline.pipeline_spec.root.input_definitions.parameters
    unknown = sorted(set(raw) - set(params))
    if unknown:
        known = ", ".join(sorted(params))
        raise ConfigError(f"unknown pipeline parameter '{unknown[0]}' for {pipeline.name} (known: {known})")
    missing = sorted(
        n
        for n, spec in params.items()
        if n not in raw and not spec.is_optional and not spec.HasField("default_value")
    )
    if missing:
        raise ConfigError(
            f"missing pipeline parameter '{missing[0]}' for {pipeline.name} (set it with --param)"
        )
    return {n: _convert(n, v, params[n].parameter_type) if isinstance(v, str) else v for n, v in raw.items()}
