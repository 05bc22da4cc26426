"""Static checks of the Kustomize manifests: every overlay renders, every document validates against
its schema, checkov passes, and the deployment policy holds (pinned models, limits, non-root)."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from aidetect.gitops import render as r

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
OVERLAYS = ("staging", "canary", "production")
CHECKOV = REPO / ".venv-infra" / "bin" / "checkov"


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {env: r.render(MANIFESTS / "overlays" / env) for env in OVERLAYS}


def _shared_schemas() -> Path:
    dirs = [d for d in r.schema_dirs() if d != MANIFESTS / "schemas"]
    if not dirs:
        pytest.skip("../shared/k8s-schemas is not present (CI has it): custom resources not validated")
    return dirs[0]


def _by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def test_overlay_directories_are_exactly_the_environments() -> None:
    assert sorted(p.name for p in (MANIFESTS / "overlays").iterdir()) == sorted(OVERLAYS)


@pytest.mark.parametrize("env", OVERLAYS)
def test_overlay_renders_and_every_document_validates(env: str, rendered: dict[str, list[dict]]) -> None:
    _shared_schemas()
    report = r.validate_documents(rendered[env])
    assert report.errors == []
    assert report.skipped == [], "every rendered kind needs a schema"
    assert len(report.validated) == len(rendered[env])
    kinds = {d["kind"] for d in rendered[env]}
    assert {"InferenceService", "ServiceMonitor", "PodDisruptionBudget"} <= kinds


def test_validation_rejects_unknown_fields_and_bad_types(rendered: dict[str, list[dict]]) -> None:
    _shared_schemas()
    docs = copy.deepcopy(rendered["staging"])
    isvc = _by_kind(docs, "InferenceService")[0]
    isvc["spec"]["predictor"]["model"]["storageURI"] = "s3://typo"  # wrong case: unknown field
    policy = _by_kind(docs, "NetworkPolicy")[0]
    policy["spec"]["podSelector"] = "everything"  # must be an object
    errors = r.validate_documents(docs).errors
    assert any("InferenceService/aidetect" in e and "storageURI" in e for e in errors), errors
    assert any("NetworkPolicy" in e for e in errors), errors


def test_policy_holds_for_every_overlay(rendered: dict[str, list[dict]]) -> None:
    for env, docs in rendered.items():
        assert r.policy_violations(docs) == [], env


def _modality(doc: dict) -> str:
    return doc["metadata"].get("labels", {}).get("aidetect.io/modality", "image")


def test_each_overlay_pins_exactly_one_model_per_modality(rendered: dict[str, list[dict]]) -> None:
    for env, docs in rendered.items():
        services = _by_kind(docs, "InferenceService")
        # the text detector (issue 19) runs beside the image model in staging and production (no canary)
        expected = ["image"] if env == "canary" else ["image", "text"]
        assert sorted(_modality(s) for s in services) == expected, env
        for isvc in services:
            uri = isvc["spec"]["predictor"]["model"]["storageUri"]
            assert r.IMMUTABLE_URI.match(uri), (env, uri)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda i: i["spec"]["predictor"]["model"].update(storageUri="s3://b/models/latest/"), "immutable"),
        (
            lambda i: i["spec"]["predictor"]["model"].update(storageUri="models:/aidetect@production"),
            "immutable",
        ),
        (lambda i: i["spec"]["predictor"]["model"].pop("storageUri"), "no model pinned"),
        (lambda i: i["metadata"]["annotations"].update({"aidetect.io/model-version": "latest"}), "version"),
        (lambda i: i["spec"]["predictor"]["model"]["resources"].pop("limits"), "no cpu limit"),
        (lambda i: i["spec"]["predictor"]["model"]["securityContext"].update(runAsUser=0), "root"),
        (lambda i: i["spec"]["explainer"]["containers"][0].update(image="x/explain:latest"), "not pinned"),
        (
            lambda i: i["spec"]["explainer"]["containers"][0]["securityContext"].pop(
                "allowPrivilegeEscalation"
            ),
            "allowPrivilegeEscalation",
        ),
        (
            lambda i: i["spec"]["explainer"]["storageUris"][0].update(
                uri="s3://b/1/" + "e" * 32 + "/artifacts/x"
            ),
            "not from the predictor's run",
        ),
    ],
)
def test_policy_catches_violations(rendered: dict[str, list[dict]], mutate, expected: str) -> None:
    docs = copy.deepcopy(rendered["staging"])
    mutate(_by_kind(docs, "InferenceService")[0])
    problems = r.policy_violations(docs)
    assert any(expected in p for p in problems), problems


def test_policy_checks_traffic_weights(rendered: dict[str, list[dict]]) -> None:
    docs = copy.deepcopy(rendered["canary"])
    _by_kind(docs, "VirtualService")[0]["spec"]["http"][0]["route"][1]["weight"] = 30
    assert any("sum to 130" in p for p in r.policy_violations(docs))


def test_production_runs_stable_and_canary_side_by_side(rendered: dict[str, list[dict]]) -> None:
    stable = _by_kind(rendered["production"], "InferenceService")[0]
    canary = _by_kind(rendered["canary"], "InferenceService")[0]
    assert stable["metadata"]["namespace"] == canary["metadata"]["namespace"] == "aidetect-production"
    assert stable["metadata"]["name"] != canary["metadata"]["name"]
    assert (
        stable["metadata"]["labels"]["aidetect.io/track"],
        canary["metadata"]["labels"]["aidetect.io/track"],
    ) == (
        "stable",
        "canary",
    )
    # the traffic split routes to both tracks' predictor services, and its weights live in git
    vs = _by_kind(rendered["canary"], "VirtualService")[0]
    for route in [route for route in vs["spec"]["http"] if len(route["route"]) > 1]:  # the split routes
        hosts = [d["destination"]["host"].split(".")[0] for d in route["route"]]
        assert hosts == [f"{stable['metadata']['name']}-predictor", f"{canary['metadata']['name']}-predictor"]
    # no object is rendered by both production Applications (Argo CD would fight over it)
    names = lambda docs: {(d["kind"], d["metadata"]["name"]) for d in docs}  # noqa: E731
    assert names(rendered["production"]).isdisjoint(names(rendered["canary"]))


def test_service_monitors_label_the_track(rendered: dict[str, list[dict]]) -> None:
    for env, track in (("staging", "stable"), ("production", "stable"), ("canary", "canary")):
        monitors = _by_kind(rendered[env], "ServiceMonitor")
        services = _by_kind(rendered[env], "InferenceService")
        assert len(monitors) == len(services), env  # one per InferenceService (image, text)
        for monitor, isvc in zip(monitors, services, strict=True):
            relabel = monitor["spec"]["endpoints"][0]["relabelings"][0]
            assert (relabel["targetLabel"], relabel["replacement"]) == ("track", track)
            assert (
                monitor["spec"]["selector"]["matchLabels"]["serving.kserve.io/inferenceservice"]
                == isvc["metadata"]["name"]
            )


def _copy_tree(tmp_path: Path) -> Path:
    root = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, root)
    return root


def test_gpu_variant_requests_a_gpu_on_the_gpu_pool(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    # as the component's comment says: added to the overlay itself, so the overlay's images registry applies
    kustomization = root / "overlays" / "production" / "kustomization.yaml"
    doc = yaml.safe_load(kustomization.read_text())
    kustomization.write_text(yaml.safe_dump({**doc, "components": ["../../components/gpu"]}))
    docs = r.render(root / "overlays" / "production")
    isvc, text = _by_kind(docs, "InferenceService")
    assert "nvidia.com/gpu" not in text["spec"]["predictor"]["model"]["resources"]["limits"]  # stays on CPU
    assert "nodeSelector" not in text["spec"]["predictor"]
    predictor = isvc["spec"]["predictor"]
    assert predictor["model"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in predictor["tolerations"]
    assert predictor["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    (runtime,) = _by_kind(docs, "ServingRuntime")
    assert runtime["spec"]["containers"][0]["image"].endswith(".amazonaws.com/aidetect-serve:0.1.0-cuda")
    assert r.policy_violations(docs) == []
    if any(d != root / "schemas" for d in r.schema_dirs()):
        assert r.validate_documents(docs).errors == []


def _checkov(target: Path) -> dict:
    if not CHECKOV.exists():
        pytest.skip(f"{CHECKOV} missing (make infra-venv)")
    proc = subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(target),
            "--framework",
            "kubernetes",
            "--skip-download",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    out = json.loads(proc.stdout)
    return out[0] if isinstance(out, list) else out


def _write_rendered(rendered: dict[str, list[dict]], out: Path) -> None:
    out.mkdir(exist_ok=True)
    for env, docs in rendered.items():
        (out / f"{env}.yaml").write_text(yaml.safe_dump_all(docs))


def test_checkov_passes_on_rendered_manifests(rendered: dict[str, list[dict]], tmp_path: Path) -> None:
    """One checkov run over every rendered overlay, the Deployments KServe makes from them (checkov has
    no KServe checks; projected, the real pod specs get its container checks), and a planted privileged
    pod: nothing of ours fails, the planted pod does (the run is live), and the only skip is the one
    justified in base/track/inferenceservice.yaml (CKV_K8S_43, image digests)."""
    out = tmp_path / "rendered"
    _write_rendered(rendered, out)
    workloads = r.kserve_workloads([d for docs in rendered.values() for d in docs])
    # predictor + explainer per overlay, and the text predictor in staging and production
    assert len(workloads) == 2 * len(OVERLAYS) + 2
    (out / "kserve-workloads.yaml").write_text(yaml.safe_dump_all(workloads))
    planted = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "debug", "namespace": "aidetect-staging"},
        "spec": {"containers": [{"name": "sh", "image": "busybox", "securityContext": {"privileged": True}}]},
    }
    (out / "planted.yaml").write_text(yaml.safe_dump(planted))
    results = _checkov(out)["results"]

    def ours(checks: list[dict]) -> list[dict]:
        return [c for c in checks if not c["file_path"].endswith("planted.yaml")]

    assert [c["check_id"] + " " + c["resource"] for c in ours(results["failed_checks"])] == []
    assert any(c["file_path"].endswith("planted.yaml") for c in results["failed_checks"])
    assert {c["check_id"] for c in results.get("skipped_checks", [])} == {"CKV_K8S_43"}
    passed = {c["check_id"] for c in ours(results["passed_checks"]) if "kserve-workloads" in c["file_path"]}
    # resources, non-root, capabilities, privilege escalation, read-only root, probes, NetworkPolicy
    assert {"CKV_K8S_10", "CKV_K8S_11", "CKV_K8S_12", "CKV_K8S_13", "CKV_K8S_23", "CKV_K8S_37"} <= passed
    assert {"CKV_K8S_20", "CKV_K8S_22", "CKV_K8S_8", "CKV_K8S_9", "CKV2_K8S_6"} <= passed


def test_kserve_workloads_merge_the_runtime_with_the_model(rendered: dict[str, list[dict]]) -> None:
    docs = [d for env in ("production", "canary") for d in rendered[env]]
    by_name = {w["metadata"]["name"]: w for w in r.kserve_workloads(docs)}
    assert set(by_name) == {
        "aidetect-predictor",
        "aidetect-explainer",
        "aidetect-canary-predictor",
        "aidetect-canary-explainer",
        "aidetect-text-predictor",
    }
    pod = by_name["aidetect-canary-predictor"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"][:3] == ["serve", "--model", "/mnt/models"]  # from the ServingRuntime
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "2Gi"}  # from the model spec
    tokens = {"name": "serving-tokens", "mountPath": "/var/run/aidetect", "readOnly": True}
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}, tokens]
    env = {e["name"]: e.get("value") for e in container["env"]}  # auth on, tokens from the mounted Secret
    assert env["AIDETECT_SERVING__AUTH_REQUIRED"] == "true"
    assert env["AIDETECT_SERVING__AUTH_TOKENS_FILE"] == "/var/run/aidetect/tokens"
    (secret,) = [v["secret"] for v in pod["volumes"] if v["name"] == "serving-tokens"]
    assert secret["secretName"] == "aidetect-serving-tokens"
    assert pod["automountServiceAccountToken"] is False and pod["securityContext"]["runAsNonRoot"] is True
    with pytest.raises(r.RenderError, match="ServingRuntime 'aidetect-onnx'"):
        r.kserve_workloads(rendered["canary"])  # the canary overlay relies on production's runtime
