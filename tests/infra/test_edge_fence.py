"""The inference edge as rendered: egress on 443 to public addresses only (no cluster, VPC or metadata)."""

from __future__ import annotations

import ipaddress
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
