"""The rendered manifests against what the *installed* controllers accept:

- KServe custom resources validate against the CRD schema of the release ansible/ pins (strict schemas in
  ../shared/k8s-schemas/pinned/kserve-<version>/, generated from that tag's CRDs), not the newest catalog;
  a pin with no matching schema folder fails, so the pin and the schema cannot drift apart;
- each serving namespace's enforced Pod Security level admits the containers Istio's sidecar injection
  adds there (with or without the Istio CNI node agent, as ansible/roles/istio installs it).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from aidetect.gitops import render as r

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
OVERLAYS = ("staging", "canary", "production")
KSERVE_GROUP = "serving.kserve.io"

# Capabilities a container may add under each Pod Security Standard (kubernetes.io/docs/concepts/security/
# pod-security-standards): baseline allows this list, restricted only NET_BIND_SERVICE.
PSS_ALLOWED_CAPABILITIES = {
    "privileged": None,  # anything
    "baseline": {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    },
    "restricted": {"NET_BIND_SERVICE"},
}
# What Istio's sidecar injection adds to a pod (its injection template): without the CNI node agent, the
# istio-init container programs iptables itself and adds NET_ADMIN and NET_RAW; with it, istio-validation
# only checks the redirect and, like istio-proxy, drops every capability.
ISTIO_INJECTED_CAPABILITIES = {False: {"istio-init": {"NET_ADMIN", "NET_RAW"}, "istio-proxy": set()}}
ISTIO_INJECTED_CAPABILITIES[True] = {"istio-validation": set(), "istio-proxy": set()}


def _versions() -> dict:
    return yaml.safe_load((REPO / "ansible" / "group_vars" / "all" / "main.yml").read_text())[
        "aidetect_versions"
    ]


def pinned_kserve_schemas() -> Path:
    dirs = [d for d in r.schema_dirs() if d != MANIFESTS / "schemas"]
    if not dirs:
        pytest.skip("../shared/k8s-schemas is not present (CI has it)")
    return dirs[0] / "pinned" / f"kserve-{_versions()['kserve_chart']}"


def _as_group_dir(schemas: Path, tmp_path: Path) -> Path:
    """A schema root where serving.kserve.io/ is the pinned folder (the layout validate_documents reads)."""
    root = tmp_path / "schemas"
    root.mkdir()
    (root / KSERVE_GROUP).symlink_to(schemas, target_is_directory=True)
    return root


def test_the_kserve_pin_has_its_schemas() -> None:
    schemas = pinned_kserve_schemas()
    assert schemas.is_dir(), (
        f"ansible pins KServe {_versions()['kserve_chart']} but {schemas} does not exist: "
        "validate against the schemas of the release that is installed"
    )
    assert (schemas / "inferenceservice_v1beta1.json").is_file()


@pytest.mark.parametrize("env", OVERLAYS)
def test_kserve_resources_validate_against_the_pinned_release(env: str, tmp_path: Path) -> None:
    schemas = pinned_kserve_schemas()
    assert schemas.is_dir(), f"no schemas for the pinned KServe release: {schemas}"
    docs = [d for d in r.render(MANIFESTS / "overlays" / env) if r.group_version(d)[0] == KSERVE_GROUP]
    assert docs
    report = r.validate_documents(docs, dirs=[_as_group_dir(schemas, tmp_path)])
    assert report.errors == [], f"KServe {_versions()['kserve_chart']} would reject: {report.errors}"
    assert report.skipped == [] and len(report.validated) == len(docs)


def test_pinned_schemas_reject_a_field_the_release_does_not_know(tmp_path: Path) -> None:
    schemas = pinned_kserve_schemas()
    docs = [
        copy.deepcopy(d)
        for d in r.render(MANIFESTS / "overlays" / "staging")
        if d["kind"] == "InferenceService"
    ]
    docs[0]["spec"]["explainer"]["storageUriz"] = []
    errors = r.validate_documents(docs, dirs=[_as_group_dir(schemas, tmp_path)]).errors
    assert any("storageUriz" in e for e in errors), errors


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version)[:3])


def autoscaling_problems(isvc: dict, kserve_version: str) -> list[str]:
    """What the pinned KServe's admission webhook refuses in the autoscaling settings. From 0.16 the
    deployment mode "RawDeployment" is named "Standard", and cpu/memory scaleMetric (HPA) passes only with
    deploymentMode Standard and autoscalerClass hpa; anything else is checked by Knative's rules (concurrency,
    rps), which refuse cpu and memory."""
    notes = isvc["metadata"].get("annotations") or {}
    mode, autoscaler = (
        notes.get("serving.kserve.io/deploymentMode"),
        notes.get("serving.kserve.io/autoscalerClass"),
    )
    hpa_mode = "Standard" if _release(kserve_version) >= (0, 16) else "RawDeployment"
    out = []
    for component in ("predictor", "explainer", "transformer"):
        metric = (isvc["spec"].get(component) or {}).get("scaleMetric")
        if metric in ("cpu", "memory") and (mode, autoscaler) != (hpa_mode, "hpa"):
            out.append(
                f"{isvc['metadata']['name']} {component}: KServe {kserve_version} refuses {metric} scaling "
                f"with deploymentMode {mode} / autoscalerClass {autoscaler} (needs {hpa_mode} / hpa)"
            )
    return out


@pytest.mark.parametrize("env", OVERLAYS)
def test_autoscaling_passes_the_pinned_releases_admission(env: str) -> None:
    services = [d for d in r.render(MANIFESTS / "overlays" / env) if d["kind"] == "InferenceService"]
    assert services  # the image model, and in staging and production also the text model
    for isvc in services:
        assert autoscaling_problems(isvc, _versions()["kserve_chart"]) == []


def test_autoscaling_check_knows_the_016_rename() -> None:
    isvc = {
        "metadata": {
            "name": "x",
            "annotations": {
                "serving.kserve.io/deploymentMode": "RawDeployment",
                "serving.kserve.io/autoscalerClass": "hpa",
            },
        },
        "spec": {"predictor": {"scaleMetric": "cpu"}},
    }
    assert autoscaling_problems(isvc, "v0.15.2") == []
    assert len(autoscaling_problems(isvc, "v0.16.0")) == 1


def _istio_cni_enabled() -> bool:
    """Whether ansible/roles/istio installs the CNI node agent and tells istiod to rely on it."""
    tasks = yaml.safe_load((REPO / "ansible" / "roles" / "istio" / "tasks" / "main.yml").read_text())
    charts = [item for task in tasks if "kubernetes.core.helm" in task for item in task.get("loop", [])]
    cni_chart = any(item["chart"] == "cni" for item in charts)
    istiod = next(item for item in charts if item["chart"] == "istiod")
    return cni_chart and bool(((istiod["chart_values"].get("pilot") or {}).get("cni") or {}).get("enabled"))


def admission_problems(namespace: dict, cni: bool) -> list[str]:
    """What the namespace's enforced level refuses among the containers injection adds."""
    labels = namespace["metadata"].get("labels") or {}
    if labels.get("istio-injection") != "enabled":
        return []
    level = labels.get("pod-security.kubernetes.io/enforce", "privileged")
    allowed = PSS_ALLOWED_CAPABILITIES[level]
    if allowed is None:
        return []
    return [
        f"{namespace['metadata']['name']}: Pod Security {level} refuses the injected {container} "
        f"(adds {sorted(caps - allowed)})"
        for container, caps in ISTIO_INJECTED_CAPABILITIES[cni].items()
        if caps - allowed
    ]


def test_pod_security_admits_the_injected_sidecars() -> None:
    namespaces = [
        d for env in OVERLAYS for d in r.render(MANIFESTS / "overlays" / env) if d["kind"] == "Namespace"
    ]
    assert {n["metadata"]["name"] for n in namespaces} == {"aidetect-staging", "aidetect-production"}
    cni = _istio_cni_enabled()
    assert [p for n in namespaces for p in admission_problems(n, cni)] == []


def test_pod_security_check_refuses_istio_init_under_baseline() -> None:
    namespace = {
        "metadata": {
            "name": "ns",
            "labels": {"istio-injection": "enabled", "pod-security.kubernetes.io/enforce": "baseline"},
        }
    }
    assert admission_problems(namespace, cni=False) == [
        "ns: Pod Security baseline refuses the injected istio-init (adds ['NET_ADMIN', 'NET_RAW'])"
    ]
    assert admission_problems(namespace, cni=True) == []
