"""The add-on roles as a dependency graph, checked in the order `site.yml` runs them.

Input: the tasks of a check-mode run (tests/infra/test_ansible_playbooks.py), in order, each with the module
arguments Ansible templated for it (loops expanded, variables resolved). From those arguments each task
*provides* and *needs*:

- namespaces: a Helm release with `create_namespace` or a Namespace object provides one; any namespaced
  object, and a Helm release without `create_namespace`, needs its namespace;
- CRDs: a `k8s_info` wait for a CustomResourceDefinition to be Established provides it (a chart that
  installs CRDs does not count until a task waits for them); an object of a custom kind needs its CRD, a
  Helm value `serviceMonitor.enabled` needs the ServiceMonitor CRD, an ApplicationSet needs the CRDs of
  every kind its local paths render, and a few charts need CRDs of others (CHART_NEEDS);
- Secrets: a Secret object provides one; `existingSecret`-style Helm values and a pod's `secretRef` /
  `secretKeyRef` (not optional) need one in the same namespace;
- the default StorageClass: a StorageClass annotated default provides it; Helm values with persistent
  volume claims, and the Kubeflow Pipelines Application (its database and object store), need it.

A need met by nothing earlier is what stops a first run on an empty cluster.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

BUILTIN_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease"}
BUILTIN_GROUPS = {
    "",
    "apps",
    "batch",
    "policy",
    "autoscaling",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
}
CLUSTER_SCOPED = {
    "Namespace",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "StorageClass",
    "PriorityClass",
}
DEFAULT_STORAGE_CLASS = "a default StorageClass"
SERVICE_MONITORS = "servicemonitors.monitoring.coreos.com"
# CRDs a chart's templates create objects of, which its values do not show.
CHART_NEEDS = {"kserve": {"certificates.cert-manager.io", "issuers.cert-manager.io"}}
# Upstream manifests an Application syncs (not renderable here) and what they need: KFP's bundled MySQL and
# object store claim volumes without naming a class.
APPLICATION_NEEDS = {"manifests/kustomize/env/": {DEFAULT_STORAGE_CLASS}}
_DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"


def crd_name(doc: dict[str, Any]) -> str:
    """`<plural>.<group>` of a custom kind (English plural of the lower-cased kind)."""
    group = str(doc.get("apiVersion", "")).rpartition("/")[0]
    kind = str(doc.get("kind", "")).lower()
    if re.search(r"[^aeiou]y$", kind):
        plural = kind[:-1] + "ies"
    else:
        plural = kind + ("es" if kind.endswith("s") else "s")
    return f"{plural}.{group}"


@dataclass
class Step:
    """What one task (or loop item) provides and needs."""

    task: str
    provides: set[str] = field(default_factory=set)
    needs: set[str] = field(default_factory=set)


def _walk(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield str(key), inner
            yield from _walk(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _walk(inner)


def _helm(args: dict[str, Any], step: Step) -> None:
    namespace = args.get("release_namespace") or "default"
    (step.provides if args.get("create_namespace") else step.needs).add(f"namespace {namespace}")
    values = args.get("values") or {}
    for key, inner in _walk(values):
        lowered = key.lower()
        if lowered == "servicemonitor" and isinstance(inner, dict) and inner.get("enabled") is True:
            step.needs.add(f"CRD {SERVICE_MONITORS}")
        if re.fullmatch(r"existing(database)?secret", lowered):
            name = inner.get("name") if isinstance(inner, dict) else inner
            if isinstance(name, str) and name:
                step.needs.add(f"Secret {namespace}/{name}")
        if lowered in ("storagespec", "volumeclaimtemplate"):
            step.needs.add(DEFAULT_STORAGE_CLASS)
    chart = str(args.get("chart_ref", "")).rsplit("/", 1)[-1]
    step.needs |= {f"CRD {c}" for c in CHART_NEEDS.get(chart, set())}


def _pod_secrets(doc: dict[str, Any], namespace: str) -> set[str]:
    out = set()
    for key, inner in _walk(doc.get("spec") or {}):
        if key in ("secretRef", "secretKeyRef") and isinstance(inner, dict) and not inner.get("optional"):
            out.add(f"Secret {namespace}/{inner.get('name')}")
    return out


def _k8s(args: dict[str, Any], step: Step, render: Callable[[str], list[dict]] | None) -> None:
    definition = args.get("definition") or []
    docs = definition if isinstance(definition, list) else [definition]
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        kind = doc.get("kind", "")
        meta = doc.get("metadata") or {}
        namespace = meta.get("namespace") or args.get("namespace") or "default"
        group = str(doc.get("apiVersion", "")).rpartition("/")[0]
        if kind == "Namespace":
            step.provides.add(f"namespace {meta.get('name')}")
        elif kind == "CustomResourceDefinition":
            step.provides.add(f"CRD {meta.get('name')}")
        elif kind == "StorageClass" and (meta.get("annotations") or {}).get(_DEFAULT_CLASS) == "true":
            step.provides.add(DEFAULT_STORAGE_CLASS)
        elif kind == "Secret":
            step.provides.add(f"Secret {namespace}/{meta.get('name')}")
        if kind not in CLUSTER_SCOPED:
            step.needs.add(f"namespace {namespace}")
        if group not in BUILTIN_GROUPS:
            step.needs.add(f"CRD {crd_name(doc)}")
        step.needs |= _pod_secrets(doc, namespace)
        if kind == "Application":
            path = str(((doc.get("spec") or {}).get("source") or {}).get("path", ""))
            for prefix, needs in APPLICATION_NEEDS.items():
                if path.startswith(prefix):
                    step.needs |= needs
        if kind == "ApplicationSet" and render is not None:
            for element in (
                ((doc.get("spec") or {}).get("generators") or [{}])[0].get("list", {}).get("elements", [])
            ):
                for rendered in render(element["path"]):
                    if str(rendered.get("apiVersion", "")).rpartition("/")[0] not in BUILTIN_GROUPS:
                        step.needs.add(f"CRD {crd_name(rendered)}")


def steps(outcomes: list[dict[str, Any]], render: Callable[[str], list[dict]] | None = None) -> list[Step]:
    """One Step per task outcome that carried module arguments (skipped tasks carry none)."""
    out = []
    for outcome in outcomes:
        args = outcome.get("args") or {}
        if not args:
            continue
        step = Step(outcome["task"])
        action = outcome.get("action", "")
        if action.endswith("helm"):
            _helm(args, step)
        elif action.endswith(".k8s"):
            _k8s(args, step, render)
        elif (
            action.endswith("k8s_info")
            and args.get("kind") == "CustomResourceDefinition"
            and args.get("wait")
        ):
            step.provides.add(f"CRD {args.get('name')}")
        out.append(step)
    return out


def unmet(ordered: list[Step]) -> list[str]:
    """Every need that no earlier step (nor the empty cluster) provides, in run order."""
    have = {f"namespace {n}" for n in BUILTIN_NAMESPACES}
    problems = []
    for step in ordered:
        for need in sorted(step.needs - have - step.provides):
            problems.append(f"{step.task}: needs {need}, which no earlier task provides")
        have |= step.provides
    return problems
