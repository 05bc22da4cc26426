"""Overlay pins and traffic weights: read, edit in place (comments and layout kept), refuse bad files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aidetect.gitops import overlays
from aidetect.gitops.git import github_repository

REPO = Path(__file__).resolve().parents[2]
ROOT = "s3://aidetect-mlflow/artifacts/4/" + "c" * 32 + "/artifacts"


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    return Path(shutil.copytree(REPO / "manifests", tmp_path / "manifests"))


def test_deployed_versions_reads_every_overlay(manifests: Path) -> None:
    found = overlays.deployed_versions(manifests)
    assert set(found) == {"staging", "canary", "production"}
    for pin in found.values():
        assert pin["model_name"] == "aidetect-detector" and isinstance(pin["version"], int)
        assert pin["uri"].endswith("/artifacts/serving")
    assert found["canary"]["weight"] == 0


def test_write_pin_changes_only_the_pinned_values(manifests: Path) -> None:
    path = overlays.pin_path(manifests, "staging")
    before = path.read_text().splitlines()
    pin = overlays.write_pin(manifests, "staging", "aidetect-detector", 12, ROOT + "/")
    assert (pin.version, pin.uri, pin.artifact_root) == (12, ROOT + "/serving", ROOT)
    after = path.read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert len(before) == len(after) and len(changed) == 3  # version, predictor URI, explainer URI
    assert '    aidetect.io/model-version: "12"' in after  # stays a quoted string (annotations must be)
    assert all(line == before[i] for i, line in enumerate(after) if line.startswith("#"))
    assert overlays.deployed_versions(manifests)["staging"]["version"] == 12
    assert overlays.deployed_versions(manifests)["production"]["version"] != 12


def test_canary_weight_is_set_on_every_route(manifests: Path) -> None:
    overlays.write_canary_weight(manifests, 30)
    assert overlays.read_canary_weight(manifests) == 30
    text = overlays.split_path(manifests).read_text()
    assert text.count("weight: 70") == 2 and text.count("weight: 30") == 2
    assert text.startswith("# The stable/canary traffic split")
    with pytest.raises(overlays.OverlayError, match=r"0\.\.100"):
        overlays.write_canary_weight(manifests, 101)


def test_routes_that_disagree_are_refused(manifests: Path) -> None:
    path = overlays.split_path(manifests)
    text = path.read_text()
    path.write_text(text.replace("weight: 0", "weight: 5", 1).replace("weight: 100", "weight: 95", 1))
    with pytest.raises(overlays.OverlayError, match="disagree"):
        overlays.read_canary_weight(manifests)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('model-version: "1"', "model-version: latest"), "not a version number"),
        (lambda t: t.replace("      storageUri:", "      storage:"), "no model pin"),
        (lambda t: t + "  - [unbalanced\n", "not valid YAML"),
    ],
)
def test_bad_pins_are_refused(manifests: Path, edit, message: str) -> None:
    path = overlays.pin_path(manifests, "canary")
    path.write_text(edit(path.read_text()))
    with pytest.raises(overlays.OverlayError, match=message):
        overlays.read_pin(manifests, "canary")


def test_unknown_environment_and_missing_overlay(manifests: Path) -> None:
    with pytest.raises(overlays.OverlayError, match="unknown environment"):
        overlays.read_pin(manifests, "prod")
    overlays.pin_path(manifests, "canary").unlink()
    assert "canary" not in overlays.deployed_versions(manifests)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/aidetect/aidetect.git", "aidetect/aidetect"),
        ("git@github.com:aidetect/aidetect.git", "aidetect/aidetect"),
        ("https://github.com/org/repo", "org/repo"),
        ("/tmp/origin.git", None),
    ],
)
def test_github_repository_from_remote_url(url: str, expected: str | None) -> None:
    assert github_repository(url) == expected
