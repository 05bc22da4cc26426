"""Argo CD objects: schema-valid, fenced to the project's namespaces and kinds, one Application per
overlay, and an InferenceService health check that really evaluates (run in Lua 5.1, as Argo CD's
gopher-lua is)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from aidetect.gitops import render as r

REPO = Path(__file__).resolve().parents[2]
ARGOCD = REPO / "argocd"
OVERLAYS = sorted(p.name for p in (REPO / "manifests" / "overlays").iterdir())
# what Argo CD deploys: every overlay, and the monitoring bundle (alerts, dashboards, schedules)
SOURCES = [f"manifests/overlays/{env}" for env in OVERLAYS] + ["manifests/monitoring"]


@pytest.fixture(scope="module")
def argo_docs() -> dict[str, dict]:
    """The ApplicationSet under its kind; each AppProject under ``AppProject/<name>``."""
    docs = r.render(ARGOCD)
    return {d["kind"] + (f"/{d['metadata']['name']}" if d["kind"] == "AppProject" else ""): d for d in docs}


def _projects(argo_docs: dict[str, dict]) -> dict[str, dict]:
    return {k.split("/", 1)[1]: d["spec"] for k, d in argo_docs.items() if k.startswith("AppProject/")}


def test_argocd_objects_validate(argo_docs: dict[str, dict]) -> None:
    if not [d for d in r.schema_dirs() if (d / "argoproj.io").is_dir()]:
        pytest.skip("../shared/k8s-schemas is not present (CI has it)")
    docs = [*argo_docs.values(), yaml.safe_load((ARGOCD / "argocd-cm.yaml").read_text())]
    report = r.validate_documents(docs)
    assert report.errors == [] and report.skipped == []
    assert set(argo_docs) == {"AppProject/aidetect", "AppProject/aidetect-monitoring", "ApplicationSet"}


def test_each_project_allows_exactly_its_applications_namespaces_and_kinds(
    argo_docs: dict[str, dict],
) -> None:
    """Tight, not merely sufficient: a kind or namespace no Application of the project renders is refused."""
    projects = _projects(argo_docs)
    sources: dict[str, list[str]] = {}
    for app in _applications(argo_docs["ApplicationSet"]):
        sources.setdefault(app["spec"]["project"], []).append(app["spec"]["source"]["path"])
    assert set(sources) == set(projects)
    for name, project in projects.items():
        rendered = [d for path in sources[name] for d in r.render(REPO / path)]
        namespaces = {d["metadata"].get("namespace") for d in rendered if d["kind"] != "Namespace"}
        assert {d["namespace"] for d in project["destinations"]} == namespaces, name
        assert all(d["server"] == "https://kubernetes.default.svc" for d in project["destinations"])
        namespaced = {(k["group"], k["kind"]) for k in project["namespaceResourceWhitelist"]}
        cluster = {(k["group"], k["kind"]) for k in project.get("clusterResourceWhitelist") or []}
        used = {(r.group_version(d)[0], d["kind"]) for d in rendered}
        assert namespaced | cluster == used, (name, (namespaced | cluster) ^ used)
        assert "*" not in {k["kind"] for k in project["namespaceResourceWhitelist"]}
    assert projects["aidetect"]["clusterResourceWhitelist"] == [{"group": "", "kind": "Namespace"}]
    assert projects["aidetect-monitoring"]["clusterResourceWhitelist"] == []
    serving_kinds = {k["kind"] for k in projects["aidetect"]["namespaceResourceWhitelist"]}
    assert not serving_kinds & {"CronWorkflow", "PrometheusRule", "ConfigMap"}


def _applications(appset: dict) -> list[dict]:
    """Instantiate the ApplicationSet's template for each list element (Go-template fields only)."""
    spec = appset["spec"]
    out = []
    for element in spec["generators"][0]["list"]["elements"]:

        def fill(text: str, element: dict = element) -> str:
            return re.sub(r"{{\s*\.(\w+)\s*}}", lambda m: str(element[m.group(1)]), text)

        app = yaml.safe_load(fill(yaml.safe_dump(spec["template"])))
        patch = yaml.safe_load(fill(spec["templatePatch"]))
        app["spec"]["syncPolicy"].update(patch["spec"]["syncPolicy"])
        out.append(app)
    return out


def test_applicationset_makes_one_application_per_overlay(argo_docs: dict[str, dict]) -> None:
    apps = _applications(argo_docs["ApplicationSet"])
    paths = sorted(a["spec"]["source"]["path"] for a in apps)
    assert paths == sorted(SOURCES)
    for app in apps:
        assert (REPO / app["spec"]["source"]["path"]).is_dir()
        assert app["spec"]["project"] in _projects(argo_docs)
        assert app["spec"]["source"]["targetRevision"] == "main"
    policy = {
        a["metadata"]["labels"]["aidetect.io/environment"]: a["spec"]["syncPolicy"]["automated"] for a in apps
    }
    assert policy["staging"] == {"prune": True, "selfHeal": True}
    assert policy["production"]["selfHeal"] is False and policy["canary"]["selfHeal"] is False


def test_applications_validate_against_the_application_schema(argo_docs: dict[str, dict]) -> None:
    if not [d for d in r.schema_dirs() if (d / "argoproj.io").is_dir()]:
        pytest.skip("../shared/k8s-schemas is not present (CI has it)")
    apps = [
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", **a}
        for a in _applications(argo_docs["ApplicationSet"])
    ]
    assert r.validate_documents(apps).errors == []


# --- the InferenceService health check, evaluated in Lua 5.1 -------------------------------------


@pytest.fixture(scope="module")
def health():
    lua51 = pytest.importorskip("lupa.lua51")
    script = yaml.safe_load((ARGOCD / "argocd-cm.yaml").read_text())["data"][
        "resource.customizations.health.serving.kserve.io_InferenceService"
    ]
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    check = runtime.eval(f"function(obj)\n{script}\nend")

    def evaluate(obj: dict) -> tuple[str, str]:
        result = check(_to_lua(runtime, obj))
        return result["status"], result["message"]

    return evaluate


def _to_lua(runtime, value):
    if isinstance(value, dict):
        return runtime.table_from({k: _to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([_to_lua(runtime, v) for v in value])
    return value


def _isvc(status: dict | None, generation: int = 2) -> dict:
    obj: dict = {"metadata": {"name": "aidetect", "generation": generation}}
    if status is not None:
        obj["status"] = status
    return obj


READY = [
    {"type": "PredictorReady", "status": "True"},
    {"type": "ExplainerReady", "status": "True"},
    {"type": "Ready", "status": "True"},
]


@pytest.mark.parametrize(
    ("status", "expected", "message_part"),
    [
        (None, "Progressing", "waiting"),
        (
            {
                "observedGeneration": 2,
                "conditions": READY,
                "modelStatus": {"states": {"activeModelState": "Loaded"}},
            },
            "Healthy",
            "ready",
        ),
        ({"observedGeneration": 1, "conditions": READY}, "Progressing", "generation 2"),
        (
            {
                "observedGeneration": 2,
                "conditions": [
                    {"type": "PredictorReady", "status": "True"},
                    {"type": "ExplainerReady", "status": "False"},
                    {"type": "Ready", "status": "False"},
                ],
            },
            "Progressing",
            "ExplainerReady",
        ),
        (
            {
                "observedGeneration": 2,
                "conditions": READY,
                "modelStatus": {"states": {"activeModelState": "Loading"}},
            },
            "Progressing",
            "Loading",
        ),
        (
            {
                "observedGeneration": 2,
                "conditions": [{"type": "Ready", "status": "False"}],
                "modelStatus": {
                    "transitionStatus": "BlockedByFailedLoad",
                    "lastFailureInfo": {"message": "no model.onnx"},
                },
            },
            "Degraded",
            "no model.onnx",
        ),
        (
            {
                "observedGeneration": 2,
                "conditions": [
                    {"type": "Ready", "status": "False", "reason": "RevisionFailed", "message": "crash"}
                ],
            },
            "Degraded",
            "RevisionFailed",
        ),
    ],
)
def test_inferenceservice_health_check(health, status, expected: str, message_part: str) -> None:
    got, message = health(_isvc(status))
    assert got == expected, message
    assert message_part in message
