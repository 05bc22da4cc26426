"""The text detector's pins (issue 19): read and written beside the image model's, reported by
``deployed_versions`` without changing what its users read, and left alone by the canary's traffic split."""

from __future__ import annotations

from pathlib import Path

import pytest

from aidetect.gitops import overlays
from tests.unit import test_gitops_overlays

manifests = test_gitops_overlays.manifests  # the fixture: a copy of manifests/

ROOT = "s3://aidetect-mlflow/artifacts/7/" + "d" * 32 + "/artifacts"


def test_deployed_versions_reports_the_text_pin_beside_the_image_pin(manifests: Path) -> None:
    found = overlays.deployed_versions(manifests)
    for env in ("staging", "production"):
        text = found[env]["text"]
        assert text["model_name"] != found[env]["model_name"] and isinstance(text["version"], int)
        assert text["uri"].endswith("/artifacts/serving")
    assert "text" not in found["canary"]
    # the image entry keeps its shape: users that read model_name/version/uri see the image model
    assert found["staging"]["model_name"] == "aidetect-detector"


def test_write_text_pin_changes_only_the_text_model(manifests: Path) -> None:
    image_before = overlays.pin_path(manifests, "staging").read_text()
    path = overlays.pin_path(manifests, "staging", "text")
    assert path == manifests / "overlays" / "staging" / "text" / "model.yaml"
    before = path.read_text().splitlines()
    pin = overlays.write_pin(manifests, "staging", "aidetect-text", 5, ROOT, "text")
    assert (pin.model_name, pin.version, pin.uri, pin.explainer_uris) == (
        "aidetect-text",
        5,
        ROOT + "/serving",
        (),
    )
    after = path.read_text().splitlines()
    assert len(after) == len(before) and sum(a != b for a, b in zip(before, after, strict=True)) == 3
    assert overlays.pin_path(manifests, "staging").read_text() == image_before
    assert overlays.deployed_versions(manifests)["staging"]["text"]["version"] == 5


def test_the_text_model_has_no_canary_track(manifests: Path) -> None:
    with pytest.raises(overlays.OverlayError, match="text model has no canary track"):
        overlays.pin_path(manifests, "canary", "text")
    with pytest.raises(overlays.OverlayError, match="unknown modality 'audio'"):
        overlays.environments("audio")
    assert overlays.predecessor("production", "text") == "staging"
    assert overlays.predecessor("production") == "canary"


def test_canary_weight_ignores_the_single_destination_text_route(manifests: Path) -> None:
    path = overlays.split_path(manifests)
    assert "aidetect-text-predictor" in path.read_text()
    overlays.write_canary_weight(manifests, 40)
    assert overlays.read_canary_weight(manifests) == 40
    text = path.read_text()
    assert text.count("weight: 60") == 2 and text.count("weight: 40") == 2
    path.write_text("spec:\n  http:\n    - route:\n        - destination: {host: a}\n")
    with pytest.raises(overlays.OverlayError, match="stable and a canary destination"):
        overlays.read_canary_weight(manifests)
