"""The inference edge as rendered: egress on 443 to public addresses only (no cluster, VPC or metadata)."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest

from aidetect.gitops import render as r

REPO = Path(__file__).resolve().parents[2]
OVERLAYS = ("staging", "canary", "production")
PRIVATE = [
    ipaddress.ip_network(c) for c in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")
]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {env: r.render(REPO / "manifests" / "overlays" / env) for env in OVERLAYS}


def _serving_policies(rendered: dict[str, list[dict]]) -> list[dict]:
    return [
        d
        for docs in rendered.values()
        for d in docs
        if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "aidetect-serving"
    ]


def test_https_egress_reaches_no_private_or_link_local_address(rendered: dict[str, list[dict]]) -> None:
    policies = _serving_policies(rendered)
    assert len(policies) == 2  # one per namespace (staging, production)
    for policy in policies:
        https = [
            e for e in policy["spec"]["egress"] if {"protocol": "TCP", "port": 443} in e.get("ports", [])
        ]
        assert len(https) == 1 and https[0].get("to"), "443 egress must name its peers"
        for peer in https[0]["to"]:
            block = peer["ipBlock"]
            excluded = [ipaddress.ip_network(c) for c in block.get("except", [])]
            for private in PRIVATE:
                assert any(private.subnet_of(x) for x in excluded), (block, private)
        # no rule without peers opens any port to everything, except DNS
        for rule in policy["spec"]["egress"]:
            if not rule.get("to"):
                assert {p["port"] for p in rule["ports"]} == {53}, rule


ROUTED = ["/v2/models/aidetect/infer", "/v2/models/aidetect/ready", "/v2/health/ready", "/v2/health/live"]
UNROUTED = [
    "/metrics",
    "/openapi.json",
    "/docs",
    "/v2",
    "/v2/models/aidetect",  # metadata: threshold, versions
    "/v2/repository/index",
    "/v2/repository/models/aidetect/unload",
    "/v2/models/other/infer",
    "/v2/models/aidetect/infer/../../../metrics",
]
GRPC_ROUTED = ["ModelInfer", "ModelReady", "ServerReady", "ServerLive"]
GRPC_UNROUTED = ["RepositoryModelUnload", "RepositoryModelLoad", "RepositoryIndex", "ModelMetadata"]


def _matches(cond: dict, path: str, headers: dict[str, str]) -> bool:
    """Istio's HTTPMatchRequest for the fields the manifests use (exact / prefix / regex, all ANDed)."""

    def one(rule: dict, value: str | None) -> bool:
        if value is None:
            return False
        if "exact" in rule:
            return value == rule["exact"]
        if "prefix" in rule:
            return value.startswith(rule["prefix"])
        return re.fullmatch(rule["regex"], value) is not None

    if "uri" in cond and not one(cond["uri"], path):
        return False
    return all(one(rule, headers.get(name)) for name, rule in (cond.get("headers") or {}).items())


def _route(vs: dict, path: str, headers: dict[str, str]) -> str | None:
    for route in vs["spec"]["http"]:
        if any(_matches(c, path, headers) for c in route.get("match") or [{}]):
            return route["name"]
    return None


def _virtual_services(rendered: dict[str, list[dict]]) -> list[dict]:
    return [d for docs in rendered.values() for d in docs if d["kind"] == "VirtualService"]


def test_the_gateway_routes_only_inference_and_health(rendered: dict[str, list[dict]]) -> None:
    services = _virtual_services(rendered)
    assert services
    grpc = {"content-type": "application/grpc"}
    for vs in services:
        for path in ROUTED:
            assert _route(vs, path, {}) == "rest-v2", (vs["metadata"], path)
        for path in UNROUTED:
            assert _route(vs, path, {}) is None, (vs["metadata"], path)
        for method in GRPC_ROUTED:
            assert _route(vs, f"/inference.GRPCInferenceService/{method}", grpc) == "grpc-v2"
        for method in GRPC_UNROUTED:
            assert _route(vs, f"/inference.GRPCInferenceService/{method}", grpc) is None, method
