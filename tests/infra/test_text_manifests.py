"""The text detector's manifests (issue 19): each environment overlay that serves text (staging,
production) renders the text InferenceService beside the image model, with its own immutable pin; every
document validates against its schema (the catalog and the pinned KServe release), the deployment policy
holds, the gateway routes its REST inference to it, and its pods serve under the route name
``aidetect-text`` (so metrics tell the two models apart)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aidetect.gitops import render as r
from tests.infra.test_manifests_pinned import _as_group_dir, pinned_kserve_schemas

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
ENVS = ("staging", "production")
TEXT = "aidetect-text"


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {env: r.render(MANIFESTS / "overlays" / env) for env in (*ENVS, "canary")}


def _named(docs: list[dict], kind: str, name: str) -> dict:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def _custom_schemas() -> None:
    if not [d for d in r.schema_dirs() if d != MANIFESTS / "schemas"]:
        pytest.skip("../shared/k8s-schemas is not present (CI has it): custom resources not validated")


@pytest.mark.parametrize("env", ENVS)
def test_env_overlay_serves_the_text_model_with_its_own_pin(
    env: str, rendered: dict[str, list[dict]]
) -> None:
    docs = rendered[env]
    image, text = _named(docs, "InferenceService", "aidetect"), _named(docs, "InferenceService", TEXT)
    assert text["metadata"]["namespace"] == image["metadata"]["namespace"] == f"aidetect-{env}"
    assert text["metadata"]["labels"]["aidetect.io/modality"] == "text"
    assert text["metadata"]["labels"]["aidetect.io/environment"] == env
    assert "explainer" not in text["spec"]  # Grad-CAM explains images only
    notes = text["metadata"]["annotations"]
    uri = text["spec"]["predictor"]["model"]["storageUri"]
    assert r.IMMUTABLE_URI.match(uri) and notes["aidetect.io/model-version"].isdigit()
    # its own pin: another registered model and run than the image model's
    assert notes["aidetect.io/model-name"] != image["metadata"]["annotations"]["aidetect.io/model-name"]
    assert (
        uri.rsplit("/artifacts/", 1)[0]
        != image["spec"]["predictor"]["model"]["storageUri"].rsplit("/artifacts/", 1)[0]
    )
    # the image overlay's patches leave it alone (staging caps both at 2 replicas, each by its own patch)
    assert text["spec"]["predictor"]["model"]["runtime"] == "aidetect-onnx"
    monitor = _named(docs, "ServiceMonitor", TEXT)
    assert monitor["spec"]["selector"]["matchLabels"]["serving.kserve.io/inferenceservice"] == TEXT
    assert monitor["spec"]["endpoints"][0]["relabelings"][0]["replacement"] == "stable"
    pdb = _named(docs, "PodDisruptionBudget", "aidetect-text-predictor")
    assert pdb["spec"]["selector"]["matchLabels"]["serving.kserve.io/inferenceservice"] == TEXT
    assert r.policy_violations(docs) == []


def test_staging_caps_the_text_model_like_the_image_model(rendered: dict[str, list[dict]]) -> None:
    for name in ("aidetect", TEXT):
        assert _named(rendered["staging"], "InferenceService", name)["spec"]["predictor"]["maxReplicas"] == 2
    assert _named(rendered["production"], "InferenceService", TEXT)["spec"]["predictor"]["maxReplicas"] == 6


def test_the_canary_track_is_image_only(rendered: dict[str, list[dict]]) -> None:
    assert not [d for d in rendered["canary"] if d["metadata"].get("labels", {}).get("aidetect.io/modality")]


@pytest.mark.parametrize("env", ENVS)
def test_every_document_validates_with_the_text_service(env: str, rendered: dict[str, list[dict]]) -> None:
    _custom_schemas()
    report = r.validate_documents(rendered[env])
    assert report.errors == [] and report.skipped == []
    assert f"InferenceService/{TEXT}" in report.validated


@pytest.mark.parametrize("env", ENVS)
def test_text_service_validates_against_the_pinned_kserve_release(
    env: str, rendered: dict[str, list[dict]], tmp_path: Path
) -> None:
    schemas = pinned_kserve_schemas()
    text = [d for d in rendered[env] if d["kind"] == "InferenceService" and d["metadata"]["name"] == TEXT]
    report = r.validate_documents(text, dirs=[_as_group_dir(schemas, tmp_path)])
    assert report.errors == [] and report.validated == [f"InferenceService/{TEXT}"]


def test_text_pods_serve_under_their_own_route_name(rendered: dict[str, list[dict]]) -> None:
    """KServe replaces the runtime's args with the model's: the text pods answer /v2/models/aidetect-text
    and label every metric model="aidetect-text"; the image pods keep the runtime's `--name aidetect`."""
    by_name = {w["metadata"]["name"]: w for w in r.kserve_workloads(rendered["production"])}
    args = {
        name: by_name[name]["spec"]["template"]["spec"]["containers"][0]["args"]
        for name in ("aidetect-predictor", "aidetect-text-predictor")
    }
    name_of = {k: v[v.index("--name") + 1] for k, v in args.items()}
    assert name_of == {"aidetect-predictor": "aidetect", "aidetect-text-predictor": TEXT}
    assert args["aidetect-text-predictor"][:3] == ["serve", "--model", "/mnt/models"]
    assert {"--http-port", "--grpc-port"} <= set(args["aidetect-text-predictor"])


def _route_to(vs: dict, path: str) -> list[str]:
    for route in vs["spec"]["http"]:
        if any((m.get("uri") or {}).get("exact") == path for m in route.get("match") or []):
            return [d["destination"]["host"] for d in route["route"]]
    return []


@pytest.mark.parametrize(("env", "overlay"), [("staging", "staging"), ("production", "canary")])
def test_the_gateway_routes_text_inference_to_the_text_predictor(
    env: str, overlay: str, rendered: dict[str, list[dict]]
) -> None:
    (vs,) = [d for d in rendered[overlay] if d["kind"] == "VirtualService"]
    host = f"{TEXT}-predictor.aidetect-{env}.svc.cluster.local"
    assert _route_to(vs, f"/v2/models/{TEXT}/infer") == [host]
    assert _route_to(vs, f"/v2/models/{TEXT}/ready") == [host]
    assert _route_to(vs, f"/v2/models/{TEXT}") == []  # metadata (threshold, versions) stays internal
    assert f"{TEXT}-predictor" not in _route_to(vs, "/v2/models/aidetect/infer")[0]
