"""What stands between a client and the predictor on a real account, checked offline:

- the gateway's load balancer: its annotations are those of the controller that will build it (EKS's own
  service controller unless ansible/ installs the AWS Load Balancer Controller), it is internal, it
  terminates TLS with the Terraform certificate, and the gateway serves the Terraform hostname, not `*`;
- every environment has a route (VirtualService) for its hostname;
- NetworkPolicies are enforced (VPC CNI network-policy agent), and the private API endpoint has a way in;
- the serving objects do not rely on what Standard (raw) deployment ignores, PodDisruptionBudgets let a
  node drain, and the Applications keep retrying until the CRDs they need exist.
"""

from __future__ import annotations

import re
from pathlib import Path

import hcl2
import yaml

from aidetect.gitops import render as r

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / "ansible"
TERRAFORM = REPO / "terraform"
OVERLAYS = ("staging", "canary", "production")
CLUSTER_OF = {"staging": "staging", "canary": "production", "production": "production"}
ANNOTATION = "service.beta.kubernetes.io/"
# Annotations only the AWS Load Balancer Controller reads; EKS's built-in controller ignores them.
LBC_ONLY = {"aws-load-balancer-scheme", "aws-load-balancer-nlb-target-type", "aws-load-balancer-subnets"}
LBC_CLASSES = {"service.k8s.aws/nlb"}


def _yaml(path: Path):
    return yaml.safe_load(path.read_text())


def _hcl(path: Path) -> dict:
    with open(path) as fh:
        return hcl2.load(fh)


def gateway_service() -> dict:
    """The ingress gateway chart's `service` values, as ansible/roles/istio passes them."""
    defaults = _yaml(ANSIBLE / "roles" / "istio" / "defaults" / "main.yml")
    tasks = _yaml(ANSIBLE / "roles" / "istio" / "tasks" / "main.yml")
    charts = [item for task in tasks if "kubernetes.core.helm" in task for item in task.get("loop", [])]
    (gateway,) = [c for c in charts if c["chart"] == "gateway"]
    service = gateway["chart_values"]["service"]
    if isinstance(service, str):  # "{{ istio_gateway_service }}"
        service = defaults[service.strip("{} ")]
    return service


def installs_lb_controller() -> bool:
    roles = [r["role"] for r in _yaml(ANSIBLE / "site.yml")[0]["roles"]]
    return any(
        "aws-load-balancer-controller" in (ANSIBLE / "roles" / role / "tasks" / "main.yml").read_text()
        for role in roles
    )


def load_balancer_problems(service: dict, lb_controller: bool) -> list[str]:
    notes = {k.removeprefix(ANNOTATION): str(v) for k, v in (service.get("annotations") or {}).items()}
    out = []
    if not lb_controller:
        out += [
            f"{k} is read only by the AWS Load Balancer Controller, which is not installed"
            for k in sorted(notes.keys() & LBC_ONLY)
        ]
        if service.get("loadBalancerClass") in LBC_CLASSES:
            out.append("loadBalancerClass names the AWS Load Balancer Controller, which is not installed")
        if notes.get("aws-load-balancer-internal") != "true":
            out.append(
                "without aws-load-balancer-internal the built-in controller makes an internet-facing one"
            )
        if notes.get("aws-load-balancer-type") != "nlb":
            out.append(
                "the built-in controller makes a Classic Load Balancer without aws-load-balancer-type: nlb"
            )
    elif notes.get("aws-load-balancer-scheme") != "internal":
        out.append("the load balancer is not internal")
    if "aws-load-balancer-ssl-cert" not in notes:
        out.append("no TLS certificate on the load balancer")
    ports = [p.get("port") for p in service.get("ports") or []]
    if 80 in ports or not ports:
        out.append(f"plain HTTP is exposed (ports {ports or 'chart default: 80, 443'})")
    return out


def test_the_gateway_load_balancer_is_internal_tls_and_built_by_the_installed_controller() -> None:
    service = gateway_service()
    assert load_balancer_problems(service, installs_lb_controller()) == []
    assert "aidetect_tf.gateway_cert_arn" in str(service["annotations"])


def test_load_balancer_check_flags_the_scheme_annotation_without_its_controller() -> None:
    service = {"type": "LoadBalancer", "annotations": {ANNOTATION + "aws-load-balancer-scheme": "internal"}}
    found = load_balancer_problems(service, lb_controller=False)
    assert (
        "aws-load-balancer-scheme is read only by the AWS Load Balancer Controller, which is not installed"
        in found
    )
    assert any("internet-facing" in p for p in found) and "no TLS certificate on the load balancer" in found


def _serving_hostname(env: str) -> str:
    return str(_hcl(TERRAFORM / "envs" / CLUSTER_OF[env] / "terraform.tfvars")["serving_hostname"]).strip('"')


def test_the_gateway_serves_the_certificates_hostname_and_every_environment_has_a_route() -> None:
    hosts = _yaml(ANSIBLE / "roles" / "istio" / "defaults" / "main.yml")["istio_gateway_hosts"]
    assert hosts == ["{{ aidetect_tf.serving_hostname }}"], "the gateway serves the Terraform hostname, not *"
    platform = (TERRAFORM / "modules" / "platform" / "main.tf").read_text()
    assert re.search(r"hostname\s*=\s*var\.serving_hostname", platform)
    for env in ("staging", "production"):
        docs = r.render(REPO / "manifests" / "overlays" / env) + (
            r.render(REPO / "manifests" / "overlays" / "canary") if env == "production" else []
        )
        services = [d for d in docs if d["kind"] == "VirtualService"]
        assert services, f"{env}: no VirtualService: the gateway has no route to this environment"
        for vs in services:
            assert vs["spec"]["hosts"] == [_serving_hostname(env)], (env, vs["spec"]["hosts"])
            assert vs["spec"]["gateways"] == ["istio-system/aidetect-gateway"]


def test_network_policies_are_enforced_and_the_private_endpoint_has_a_way_in() -> None:
    cluster = (TERRAFORM / "modules" / "cluster" / "main.tf").read_text()
    assert re.search(
        r'each\.key == "vpc-cni" \? jsonencode\(\{ enableNetworkPolicy = "true" \}\)',
        cluster,
    )
    variables = (TERRAFORM / "modules" / "cluster" / "variables.tf").read_text()
    assert re.search(r'variable "endpoint_public_access" \{[^}]*default\s*=\s*false', variables)
    platform = (TERRAFORM / "modules" / "platform" / "main.tf").read_text()
    assert 'source                    = "../bastion"' in platform
    bastion = (TERRAFORM / "modules" / "bastion" / "main.tf").read_text()
    assert "AmazonSSMManagedInstanceCore" in bastion and "associate_public_ip_address = false" in bastion
    resources = {
        (t.strip('"'), n.strip('"')): body
        for entry in _hcl(TERRAFORM / "modules" / "bastion" / "main.tf")["resource"]
        for t, named in entry.items()
        for n, body in named.items()
    }
    assert "ingress" not in resources[("aws_security_group", "this")], "the bastion takes no inbound traffic"
    (rule,) = [b for (t, _), b in resources.items() if t == "aws_vpc_security_group_ingress_rule"]
    assert rule["security_group_id"] == "${var.cluster_security_group_id}" and rule["from_port"] == 443
    runbook = (REPO / "docs" / "runbook.md").read_text()
    assert "AWS-StartPortForwardingSessionToRemoteHost" in runbook and "bastion_instance_id" in runbook


def _overlay(env: str) -> list[dict]:
    return r.render(REPO / "manifests" / "overlays" / env)


def test_serving_objects_rely_on_nothing_raw_deployment_ignores_and_let_nodes_drain() -> None:
    for env in OVERLAYS:
        docs = _overlay(env)
        services = [d for d in docs if d["kind"] == "InferenceService"]  # image, and text beside it
        assert services
        for isvc in services:
            assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] in (
                "Standard",
                "RawDeployment",
            )
            for component in ("predictor", "explainer"):
                spec = isvc["spec"].get(component) or {}  # the text model has no explainer
                # Knative's queue-proxy enforces these; Standard mode's plain Deployments do not
                assert not {"containerConcurrency", "timeout"} & set(spec), (env, component)
            (pdb,) = [
                d
                for d in docs
                if d["kind"] == "PodDisruptionBudget"
                and d["spec"]["selector"]["matchLabels"]["serving.kserve.io/inferenceservice"]
                == isvc["metadata"]["name"]
            ]
            replicas = isvc["spec"]["predictor"]["minReplicas"]
            allowed = pdb["spec"].get("maxUnavailable", replicas - pdb["spec"].get("minAvailable", 0))
            assert int(allowed) >= 1, (
                f"{env}: the PDB allows no eviction of {replicas} replica(s): node drains block"
            )


def test_applications_keep_retrying_until_their_crds_exist() -> None:
    appset = _yaml(REPO / "argocd" / "applicationset.yaml")
    assert appset["spec"]["template"]["spec"]["syncPolicy"]["retry"]["limit"] < 0
    kfp = _yaml(ANSIBLE / "roles" / "kubeflow_pipelines" / "tasks" / "main.yml")
    (sync,) = [
        t
        for t in kfp
        if "Application" in str((t.get("kubernetes.core.k8s") or {}).get("definition", {}).get("kind"))
    ]
    assert sync["kubernetes.core.k8s"]["definition"]["spec"]["syncPolicy"]["retry"]["limit"] < 0
