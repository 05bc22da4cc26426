"""Read and edit the overlays' model pins and the canary traffic weight, preserving comments and layout.

Each environment pins one registered model version in ``manifests/overlays/<env>/model.yaml``
(annotations ``aidetect.io/model-name`` / ``aidetect.io/model-version`` and the run-artifact URIs);
the canary overlay's ``virtualservice.yaml`` holds the stable/canary weights. The text detector has its
own pin per environment in ``overlays/<env>/text/model.yaml`` (staging and production: no canary track).
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from aidetect.errors import AidetectError

ENVIRONMENTS = ("staging", "canary", "production")
# promotion order: an environment takes only the version its predecessor runs
PREDECESSOR = {"canary": "staging", "production": "canary"}
MODALITIES = ("image", "text")
# the text detector: stable only, so production takes what staging runs
TEXT_ENVIRONMENTS = ("staging", "production")
TEXT_PREDECESSOR = {"production": "staging"}
NAME_KEY = "aidetect.io/model-name"
VERSION_KEY = "aidetect.io/model-version"
PIN_FILE = "model.yaml"
SPLIT_FILE = "virtualservice.yaml"  # in the canary overlay


class OverlayError(AidetectError):
    """An overlay file is missing or does not have the expected shape."""


@dataclass(frozen=True)
class Pin:
    """The model version one environment serves."""

    env: str
    model_name: str
    version: int
    uri: str  # the predictor's serving bundle (storageUri)
    artifact_root: str  # the run's artifact folder the bundle and the checkpoint come from
    explainer_uris: tuple[str, ...] = ()  # the explainer's checkpoint (storageUris), when it has one


def _yaml() -> YAML:
    y = YAML()
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def environments(modality: str = "image") -> tuple[str, ...]:
    """The environments that pin a model of ``modality``, in promotion order."""
    if modality not in MODALITIES:
        raise OverlayError(f"unknown modality {modality!r} (one of {', '.join(MODALITIES)})")
    return TEXT_ENVIRONMENTS if modality == "text" else ENVIRONMENTS


def predecessor(env: str, modality: str = "image") -> str | None:
    """The environment that must already run a version before ``env`` may take it."""
    return (TEXT_PREDECESSOR if modality == "text" else PREDECESSOR).get(env)


def pin_relpath(env: str, modality: str = "image") -> str:
    """``overlays/<env>[/text]/model.yaml``, relative to the manifests folder."""
    if env not in ENVIRONMENTS:
        raise OverlayError(f"unknown environment {env!r} (one of {', '.join(ENVIRONMENTS)})")
    if env not in environments(modality):
        raise OverlayError(
            f"the {modality} model has no {env} track (environments: {', '.join(environments(modality))})"
        )
    return "/".join(["overlays", env, *(["text"] if modality == "text" else []), PIN_FILE])


def pin_path(manifests_dir: str | Path, env: str, modality: str = "image") -> Path:
    return Path(manifests_dir) / pin_relpath(env, modality)


def split_path(manifests_dir: str | Path) -> Path:
    return Path(manifests_dir) / "overlays" / "canary" / SPLIT_FILE


def _load(text: str, where: str) -> Any:
    try:
        return _yaml().load(text)
    except YAMLError as exc:
        raise OverlayError(f"{where}: not valid YAML: {exc}") from None


def _dump(doc: Any) -> str:
    buf = io.StringIO()
    _yaml().dump(doc, buf)
    return buf.getvalue()


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _read_file(path: Path) -> str:
    if not path.exists():
        raise OverlayError(f"{path}: missing")
    return path.read_text()


def parse_pin(env: str, text: str, where: str = "model.yaml") -> Pin:
    """The pin in one overlay's ``model.yaml`` text."""
    doc = _load(text, where)
    try:
        notes = doc["metadata"]["annotations"]
        uri = str(doc["spec"]["predictor"]["model"]["storageUri"])
        name, version = str(notes[NAME_KEY]), str(notes[VERSION_KEY])
    except (KeyError, TypeError) as exc:
        raise OverlayError(f"{where}: no model pin ({exc} missing)") from None
    if not version.isdigit():
        raise OverlayError(f"{where}: {VERSION_KEY} is {version!r}, not a version number")
    root = uri.rsplit("/artifacts/", 1)[0] + "/artifacts"
    explainer = (doc["spec"].get("explainer") or {}).get("storageUris") or []
    extra = tuple(str(item.get("uri", "")) for item in explainer if isinstance(item, dict))
    return Pin(env, name, int(version), uri, root, explainer_uris=extra)


def read_pin(manifests_dir: str | Path, env: str, modality: str = "image") -> Pin:
    path = pin_path(manifests_dir, env, modality)
    return parse_pin(env, _read_file(path), str(path))


def write_pin(
    manifests_dir: str | Path,
    env: str,
    model_name: str,
    version: int,
    artifact_root: str,
    modality: str = "image",
) -> Pin:
    """Pin ``env`` to a registered version: predictor bundle ``<root>/serving``, explainer checkpoint
    ``<root>/checkpoint``. Only these values change; comments, order and quoting stay."""
    path = pin_path(manifests_dir, env, modality)
    doc = _load(_read_file(path), str(path))
    root = artifact_root.rstrip("/")
    doc["metadata"]["annotations"][NAME_KEY] = model_name
    doc["metadata"]["annotations"][VERSION_KEY] = DoubleQuotedScalarString(str(version))
    doc["spec"]["predictor"]["model"]["storageUri"] = f"{root}/serving"
    for item in (doc["spec"].get("explainer") or {}).get("storageUris", []):
        item["uri"] = f"{root}/checkpoint"
    _write_atomic(path, _dump(doc))
    return read_pin(manifests_dir, env, modality)


def _split_routes(doc: Any, where: str) -> list[Any]:
    """The routes with a stable and a canary destination (a route with one destination, such as the
    text detector's, takes no part in the split)."""
    try:
        routes = [route for route in doc["spec"]["http"] if len(route["route"]) > 1]
    except (KeyError, TypeError):
        routes = []
    if not routes:
        raise OverlayError(f"{where}: expected http routes with a stable and a canary destination")
    return routes


def parse_canary_weight(text: str, where: str = SPLIT_FILE) -> int:
    """The canary's share of traffic (percent); every split route must carry the same split."""
    weights = set()
    try:
        for route in _split_routes(_load(text, where), where):
            weights.add(int(route["route"][1].get("weight", 0)))
    except (KeyError, TypeError, ValueError):
        raise OverlayError(f"{where}: expected http routes with a stable and a canary destination") from None
    if len(weights) != 1:
        raise OverlayError(f"{where}: routes disagree on the canary weight: {sorted(weights)}")
    return weights.pop()


def read_canary_weight(manifests_dir: str | Path) -> int:
    path = split_path(manifests_dir)
    return parse_canary_weight(_read_file(path), str(path))


def write_canary_weight(manifests_dir: str | Path, weight: int) -> None:
    """Send ``weight`` percent to the canary and the rest to stable, on every route."""
    if not 0 <= weight <= 100:
        raise OverlayError(f"canary weight must be 0..100, got {weight}")
    path = split_path(manifests_dir)
    doc = _load(_read_file(path), str(path))
    for route in _split_routes(doc, str(path)):
        route["route"][0]["weight"] = 100 - weight
        route["route"][1]["weight"] = weight
    _write_atomic(path, _dump(doc))


def deployed_versions(manifests_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Which registered version each overlay pins: ``{env: {model_name, version, uri}}`` for the image
    model (the canary entry also carries ``weight``, its percent of production traffic), plus ``text:
    {model_name, version, uri}`` where the environment also pins a text model. Environments whose
    overlay is missing are left out."""
    out: dict[str, dict[str, Any]] = {}
    for env in ENVIRONMENTS:
        if not pin_path(manifests_dir, env).exists():
            continue
        pin = read_pin(manifests_dir, env)
        out[env] = {"model_name": pin.model_name, "version": pin.version, "uri": pin.uri}
        if env == "canary" and split_path(manifests_dir).exists():
            out[env]["weight"] = read_canary_weight(manifests_dir)
        if env in TEXT_ENVIRONMENTS and pin_path(manifests_dir, env, "text").exists():
            text = read_pin(manifests_dir, env, "text")
            out[env]["text"] = {"model_name": text.model_name, "version": text.version, "uri": text.uri}
    return out
