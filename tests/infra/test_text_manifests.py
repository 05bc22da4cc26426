"""The text detector's manifests (issue 19): per environment, overlays/<env>/text renders, every document
validates against its schema, the deployment policy holds, and exactly one immutable text version is
pinned there (its own pin, its own promotion)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aidetect.gitops import render as r

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
ENVS = ("staging", "production")


@pytest.mark.parametrize("env", ENVS)
def test_text_service_renders_validates_and_is_pinned(env: str) -> None:
    docs = r.render(MANIFESTS / "overlays" / env / "text")
    assert {d["kind"] for d in docs} == {"InferenceService", "ServiceMonitor", "PodDisruptionBudget"}
    assert {d["metadata"]["namespace"] for d in docs} == {f"aidetect-{env}"}
    assert r.policy_violations(docs) == []
    (isvc,) = [d for d in docs if d["kind"] == "InferenceService"]
    assert isvc["metadata"]["name"] == "aidetect-text"
    assert isvc["metadata"]["labels"]["aidetect.io/modality"] == "text"
    assert "explainer" not in isvc["spec"]  # Grad-CAM explains images only
    assert r.IMMUTABLE_URI.match(isvc["spec"]["predictor"]["model"]["storageUri"])
    assert isvc["metadata"]["annotations"]["aidetect.io/model-version"].isdigit()
    monitor = next(d for d in docs if d["kind"] == "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"]["serving.kserve.io/inferenceservice"] == "aidetect-text"
    if not [d for d in r.schema_dirs() if d != MANIFESTS / "schemas"]:
        pytest.skip("../shared/k8s-schemas is not present (CI has it): custom resources not validated")
    report = r.validate_documents(docs)
    assert report.errors == [] and report.skipped == []
