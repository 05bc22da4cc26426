"""Structural tests of terraform/: the HCL is parsed with python-hcl2 and the properties that matter are
asserted (GPU node groups, buckets, IRSA trust, credentials, validation, pinning). Every checker is also run
on a deliberately broken snippet, so each test is shown to be able to fail.

No AWS API is reachable here: `terraform plan`/`apply` are not run (see docs/runbook.md).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import Path

import hcl2
import pytest

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
MODULES = TERRAFORM / "modules"
ENVS = ("staging", "production")
HCL_FILES = sorted(p for p in TERRAFORM.rglob("*") if p.suffix in (".tf", ".tfvars", ".hcl") and p.is_file())
GPU_FAMILIES = re.compile(r"^(g4dn|g5|g6|g6e|gr6|p4d|p4de|p5|p5e|p5en|p6-b200)\.")


def unq(value: object) -> object:
    """python-hcl2 keeps the quotes of string literals and keys: strip them."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def load(path: Path) -> dict:
    return _load_cached(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _load_cached(path: str, _mtime_ns: int) -> dict:
    with open(path) as f:
        return hcl2.load(f)


def load_dir(directory: Path) -> list[dict]:
    return [load(p) for p in sorted(directory.glob("*.tf"))]


def blocks(docs: list[dict], kind: str) -> Iterator[tuple[str, str, dict]]:
    """(type, name, body) of every `resource` or `data` block."""
    for doc in docs:
        for entry in doc.get(kind, []):
            for rtype, named in entry.items():
                for name, body in named.items():
                    yield str(unq(rtype)), str(unq(name)), body


def locals_of(docs: list[dict]) -> dict:
    merged: dict = {}
    for doc in docs:
        for entry in doc.get("locals", []):
            merged.update(entry)
    return merged


def resolve(value: object, local_values: dict) -> object:
    """Resolve a plain `${local.a.b}` reference; anything else is returned unquoted."""
    if isinstance(value, str):
        m = re.fullmatch(r"\$\{local\.([\w.]+)\}", value)
        if m:
            node: object = local_values
            for part in m.group(1).split("."):
                node = node.get(part) if isinstance(node, dict) else None
            return unq(node)
    return unq(value)


def variables_of(docs: list[dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for doc in docs:
        for entry in doc.get("variable", []):
            for name, body in entry.items():
                out[str(unq(name))] = body
    return out


def write_module(tmp_path: Path, text: str) -> Path:
    module = tmp_path / "broken"
    module.mkdir()
    (module / "main.tf").write_text(text)
    return module


# ---------------------------------------------------------------- checkers (return a list of problems)


def gpu_node_group_problems(module: Path) -> list[str]:
    """GPU node groups: NVIDIA AMI, nvidia.com/gpu NoSchedule taint, labels, min_size 0 (scale to zero)."""
    docs = load_dir(module)
    local_values = locals_of(docs)
    variables_text = (module / "variables.tf").read_text() if (module / "variables.tf").exists() else ""
    problems = []
    for rtype, name, body in blocks(docs, "resource"):
        if rtype != "aws_eks_node_group" or "gpu" not in name:
            continue
        taints = [{k: resolve(v, local_values) for k, v in t.items()} for t in body.get("taint", [])]
        if not any(t.get("key") == "nvidia.com/gpu" and t.get("effect") == "NO_SCHEDULE" for t in taints):
            problems.append(f"{name}: no nvidia.com/gpu NO_SCHEDULE taint")
        if not body.get("labels"):
            problems.append(f"{name}: no labels")
        scaling = (body.get("scaling_config") or [{}])[0]
        if scaling.get("min_size") != 0:
            problems.append(f"{name}: min_size is {scaling.get('min_size')!r}, not 0 (no scale to zero)")
        ami = str(resolve(body.get("ami_type", ""), local_values))
        nvidia_literal = "NVIDIA" in ami and "$" not in ami
        nvidia_validated = "ami_type" in ami and "AL2023_x86_64_NVIDIA" in variables_text
        if not (nvidia_literal or nvidia_validated):
            problems.append(f"{name}: ami_type {ami!r} is not an NVIDIA AMI type")
    return problems


def _references(expr: object, rtype: str, name: str) -> bool:
    return isinstance(expr, str) and f"{rtype}.{name}" in expr


def bucket_problems(module: Path) -> list[str]:
    """Every bucket: versioning Enabled, default encryption, the four public-access blocks, a lifecycle."""
    docs = load_dir(module)
    resources = list(blocks(docs, "resource"))
    problems = []
    for rtype, bucket, body in resources:
        if rtype != "aws_s3_bucket":
            continue

        def attached(kind: str, bucket: str = bucket) -> list[dict]:
            return [
                b
                for t, _, b in resources
                if t == kind and _references(b.get("bucket"), "aws_s3_bucket", bucket)
            ]

        versioning = attached("aws_s3_bucket_versioning")
        if not any(
            unq(c.get("status")) == "Enabled" for v in versioning for c in v["versioning_configuration"]
        ):
            problems.append(f"{bucket}: versioning not enabled")
        algorithms = [
            unq(d.get("sse_algorithm"))
            for e in attached("aws_s3_bucket_server_side_encryption_configuration")
            for r in e.get("rule", [])
            for d in r.get("apply_server_side_encryption_by_default", [])
        ]
        if not algorithms:
            problems.append(f"{bucket}: no default encryption")
        elif "aws:kms" not in algorithms and "CKV_AWS_145" not in str(body.get("__comments__", "")):
            problems.append(f"{bucket}: not KMS-encrypted and no justified exception")
        blocks_public = attached("aws_s3_bucket_public_access_block")
        flags = ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
        if not any(all(p.get(f) is True for f in flags) for p in blocks_public):
            problems.append(f"{bucket}: public access not fully blocked")
        if not attached("aws_s3_bucket_lifecycle_configuration"):
            problems.append(f"{bucket}: no lifecycle configuration")
    return problems


def irsa_trust_problems(module: Path) -> list[str]:
    """Web-identity trust must pin the exact service account (StringEquals on :sub, no wildcard) and :aud."""
    problems = []
    for rtype, name, body in blocks(load_dir(module), "data"):
        if rtype != "aws_iam_policy_document":
            continue
        for statement in body.get("statement", []):
            if "sts:AssumeRoleWithWebIdentity" not in [unq(a) for a in statement.get("actions", [])]:
                continue
            conditions = statement.get("condition", [])
            subs = [c for c in conditions if str(unq(c.get("variable"))).endswith(":sub")]
            auds = [c for c in conditions if str(unq(c.get("variable"))).endswith(":aud")]
            if not subs:
                problems.append(f"{name}: trust has no :sub condition (any service account could assume it)")
            for c in subs:
                values = [str(unq(v)) for v in c.get("values", [])]
                if unq(c.get("test")) != "StringEquals":
                    problems.append(f"{name}: :sub condition uses {unq(c.get('test'))}, not StringEquals")
                if not values or any("*" in v or not v.startswith("system:serviceaccount:") for v in values):
                    problems.append(f"{name}: :sub values {values} are not exact service accounts")
            if not any([unq(v) for v in c.get("values", [])] == ["sts.amazonaws.com"] for c in auds):
                problems.append(f"{name}: trust does not pin the sts.amazonaws.com audience")
    return problems


SECRET_NAMES = re.compile(r"(password|secret_key|access_key|secret|token|private_key)$", re.I)
AWS_KEY_ID = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")


def _walk(node: object, path: str = "") -> Iterator[tuple[str, object]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, f"{path}.{unq(k)}")
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v, path)
    else:
        yield path, node


def credential_problems(files: list[Path]) -> list[str]:
    """No literal secrets: secret-named attributes must not hold string literals; no AWS key ids anywhere."""
    problems = []
    for path in files:
        text = path.read_text()
        if AWS_KEY_ID.search(text):
            problems.append(f"{path.name}: contains an AWS access key id")
        for attr, value in _walk(load(path)):
            leaf = attr.rsplit(".", 1)[-1]
            is_literal = isinstance(value, str) and value.startswith('"') and "${" not in value
            if SECRET_NAMES.search(leaf) and is_literal:
                problems.append(f"{path.name}: {attr} is a hard-coded value")
        for rtype, name, body in blocks([load(path)], "resource"):
            managed = "password" not in body and body.get("manage_master_user_password") is True
            if rtype == "aws_db_instance" and not managed:
                problems.append(f"{name}: master password not managed by RDS/Secrets Manager")
    return problems


def unvalidated_variables(module: Path, names: list[str]) -> list[str]:
    variables = variables_of(load_dir(module))
    return [n for n in names if n not in variables or not variables[n].get("validation")]


def pinning_problems(directory: Path) -> list[str]:
    """required_version with an upper bound, aws provider pinned to one major, only local module sources."""
    problems = []
    for path in sorted(directory.rglob("*.tf")):
        doc = load(path)
        for tf in doc.get("terraform", []):
            version = str(unq(tf.get("required_version", "")))
            if not version or "<" not in version:
                problems.append(f"{path.name}: required_version {version!r} has no upper bound")
            for providers in tf.get("required_providers", []):
                for pname, spec in providers.items():
                    if str(pname).startswith("__"):
                        continue
                    constraint = str(unq(spec.get("version", ""))) if isinstance(spec, dict) else ""
                    if not re.fullmatch(r"~> \d+\.\d+(\.\d+)?", constraint):
                        problems.append(
                            f"{path.name}: provider {unq(pname)} version {constraint!r} is not ~> pinned"
                        )
        for entry in doc.get("module", []):
            for name, body in entry.items():
                if str(name).startswith("__"):
                    continue
                source = str(unq(body.get("source", "")))
                if not source.startswith("../"):
                    problems.append(f"{path.name}: module {unq(name)} source {source!r} is not local")
    return problems


# ---------------------------------------------------------------- tests on the real tree


def test_every_hcl_file_parses() -> None:
    assert len(HCL_FILES) > 20
    for path in HCL_FILES:
        assert isinstance(load(path), dict), path


def test_gpu_node_groups_are_tainted_labelled_and_scale_to_zero() -> None:
    assert gpu_node_group_problems(MODULES / "node_groups") == []
    docs = load_dir(MODULES / "node_groups")
    gpu_groups = [n for t, n, _ in blocks(docs, "resource") if t == "aws_eks_node_group" and "gpu" in n]
    assert gpu_groups, "no GPU node group resource"
    # Scale from zero: the autoscaler learns an empty group's labels, taint and GPU count from ASG tags.
    asg_tags = [b for t, _, b in blocks(docs, "resource") if t == "aws_autoscaling_group_tag"]
    assert asg_tags and "aws_eks_node_group.gpu" in asg_tags[0]["autoscaling_group_name"]
    template = str(locals_of(docs)["gpu_autoscaler_tags"])
    for tag in (
        "node-template/label/",
        "node-template/taint/nvidia.com/gpu",
        "node-template/resources/nvidia.com/gpu",
    ):
        assert tag in template, tag


@pytest.mark.parametrize("env", ENVS)
def test_envs_use_gpu_instances_and_a_spot_group(env: str) -> None:
    tfvars = load(TERRAFORM / "envs" / env / "terraform.tfvars")
    groups = tfvars["gpu_node_groups"]
    assert groups
    for name, group in groups.items():
        types = [unq(t) for t in group["instance_types"]]
        assert all(GPU_FAMILIES.match(t) for t in types), (name, types)
    assert any(unq(g.get("capacity_type")) == "SPOT" for g in groups.values()), "no optional spot group"


def test_buckets_are_versioned_encrypted_private_with_lifecycle() -> None:
    for module in (MODULES / "storage", TERRAFORM / "bootstrap"):
        assert bucket_problems(module) == [], module
    names = [n for t, n, _ in blocks(load_dir(MODULES / "storage"), "resource") if t == "aws_s3_bucket"]
    assert names == ["this", "access_logs"]
    storage = (MODULES / "storage" / "main.tf").read_text()
    for purpose in ("datasets", "artifacts", "inference-logs"):
        assert f"{purpose} " in storage or f"{purpose}=" in storage.replace(" ", ""), purpose


def test_irsa_roles_trust_only_their_service_account() -> None:
    assert irsa_trust_problems(MODULES / "irsa") == []
    platform_iam = load_dir(MODULES / "platform_iam")
    roles = locals_of(platform_iam)["roles"]
    assert {"pipelines", "predictor", "mlflow", "monitoring"} <= set(roles)
    role_module = next(e['"role"'] for doc in platform_iam for e in doc.get("module", []) if '"role"' in e)
    assert role_module["source"] == '"../irsa"'
    assert role_module["service_account"] == "${var.service_accounts[each.key].name}"
    assert role_module["namespace"] == "${var.service_accounts[each.key].namespace}"
    sa_map = (MODULES / "platform" / "main.tf").read_text()
    for sa in ("pipeline-runner", "aidetect-predictor", "mlflow", "aidetect-monitoring"):
        assert f'name = "{sa}"' in sa_map, sa


def test_predictor_role_cannot_write_models_or_read_datasets() -> None:
    docs = load_dir(MODULES / "platform_iam")
    predictor = next(
        b for t, n, b in blocks(docs, "data") if t == "aws_iam_policy_document" and n == "predictor"
    )
    for statement in predictor["statement"]:
        actions = {unq(a) for a in statement["actions"]}
        resources = " ".join(map(str, statement["resources"]))
        assert "*" not in actions and "s3:*" not in actions
        assert "datasets" not in resources
        if actions & {"s3:PutObject", "s3:DeleteObject"}:
            assert "local.logs" in resources and "local.artifacts" not in resources


def test_no_hard_coded_credentials() -> None:
    assert credential_problems(HCL_FILES) == []


def test_variables_are_validated() -> None:
    required = {
        "network": ["name", "vpc_cidr", "availability_zones", "kms_key_arn"],
        "cluster": [
            "name",
            "kubernetes_version",
            "public_access_cidrs",
            "enabled_log_types",
            "addon_versions",
        ],
        "node_groups": ["kubernetes_version", "system_group", "gpu_groups"],
        "storage": ["name_prefix", "kms_key_arn", "inference_logs_retention_days"],
        "ecr": ["repositories", "kms_key_arn"],
        "database": ["identifier", "engine_version", "instance_class", "backup_retention_days"],
        "irsa": [
            "name",
            "oidc_provider_arn",
            "oidc_issuer",
            "namespace",
            "service_account",
            "managed_policy_arns",
        ],
        "platform": ["environment", "network"],
    }
    for module, names in required.items():
        assert unvalidated_variables(MODULES / module, names) == [], module
    total = sum(
        len(v.get("validation", [])) for m in MODULES.iterdir() for v in variables_of(load_dir(m)).values()
    )
    assert total >= 40


def test_versions_are_pinned() -> None:
    assert pinning_problems(TERRAFORM) == []
    for env in ENVS:
        tfvars = load(TERRAFORM / "envs" / env / "terraform.tfvars")
        assert re.fullmatch(r"1\.\d+", str(unq(tfvars["kubernetes_version"])))
        assert re.fullmatch(r"1[5-8](\.\d+)?", str(unq(tfvars["database"]["engine_version"])))
    cluster = next(
        b for t, _, b in blocks(load_dir(MODULES / "cluster"), "resource") if t == "aws_eks_cluster"
    )
    assert cluster["version"] == "${var.kubernetes_version}"
    assert cluster["enabled_cluster_log_types"] == "${var.enabled_log_types}"


def test_cluster_has_oidc_provider_and_private_endpoint() -> None:
    resources = {(t, n): b for t, n, b in blocks(load_dir(MODULES / "cluster"), "resource")}
    oidc = resources[("aws_iam_openid_connect_provider", "this")]
    assert [unq(c) for c in oidc["client_id_list"]] == ["sts.amazonaws.com"]
    vpc = resources[("aws_eks_cluster", "this")]["vpc_config"][0]
    assert vpc["endpoint_private_access"] is True
    assert resources[("aws_eks_cluster", "this")]["encryption_config"][0]["resources"] == ['"secrets"']


def test_envs_use_an_s3_backend_with_locking() -> None:
    for env in ENVS:
        terraform_block = load(TERRAFORM / "envs" / env / "versions.tf")["terraform"][0]
        backend = terraform_block["backend"][0]['"s3"']
        assert backend["use_lockfile"] is True and backend["encrypt"] is True
        backend_config = load(TERRAFORM / "envs" / env / "backend.hcl")
        assert unq(backend_config["key"]) == f"{env}/terraform.tfstate"


# ---------------------------------------------------------------- the checkers catch broken HCL


def test_checker_flags_an_untainted_always_on_gpu_group(tmp_path: Path) -> None:
    module = write_module(
        tmp_path,
        """
resource "aws_eks_node_group" "gpu" {
  ami_type = "AL2023_x86_64_STANDARD"
  scaling_config {
    min_size     = 1
    max_size     = 2
    desired_size = 1
  }
}
""",
    )
    problems = gpu_node_group_problems(module)
    assert any("taint" in p for p in problems)
    assert any("labels" in p for p in problems)
    assert any("min_size" in p for p in problems)
    assert any("NVIDIA" in p for p in problems)


def test_checker_flags_an_open_unencrypted_bucket(tmp_path: Path) -> None:
    module = write_module(
        tmp_path,
        """
resource "aws_s3_bucket" "data" {
  bucket = "x"
}
resource "aws_s3_bucket_public_access_block" "data" {
  bucket                  = aws_s3_bucket.data.id
  block_public_acls       = true
  block_public_policy     = false
  ignore_public_acls      = true
  restrict_public_buckets = true
}
""",
    )
    problems = bucket_problems(module)
    assert {p.split(": ")[1] for p in problems} == {
        "versioning not enabled",
        "no default encryption",
        "public access not fully blocked",
        "no lifecycle configuration",
    }


def test_checker_flags_a_wildcard_or_missing_service_account_condition(tmp_path: Path) -> None:
    module = write_module(
        tmp_path,
        """
data "aws_iam_policy_document" "wild" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    condition {
      test     = "StringLike"
      variable = "${var.issuer}:sub"
      values   = ["system:serviceaccount:*:*"]
    }
  }
}
data "aws_iam_policy_document" "open" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
  }
}
""",
    )
    problems = irsa_trust_problems(module)
    assert any(p.startswith("wild:") and "StringLike" in p for p in problems)
    assert any(p.startswith("wild:") and "not exact" in p for p in problems)
    assert any(p.startswith("open:") and "no :sub" in p for p in problems)
    assert any(p.startswith("open:") and "audience" in p for p in problems)


def test_checker_flags_hard_coded_credentials(tmp_path: Path) -> None:
    module = write_module(
        tmp_path,
        """
provider "aws" {
  access_key = "AKIAABCDEFGHIJKLMNOP"
  secret_key = "not-really-a-secret"
}
resource "aws_db_instance" "db" {
  password = "hunter2hunter2"
}
""",
    )
    problems = credential_problems([module / "main.tf"])
    assert any("access key id" in p for p in problems)
    assert any("secret_key" in p for p in problems)
    assert any("db.password" in p or "password is a hard-coded" in p for p in problems)
    assert any("not managed" in p for p in problems)


def test_checker_flags_unvalidated_variables_and_loose_pins(tmp_path: Path) -> None:
    module = write_module(
        tmp_path,
        """
terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}
variable "kubernetes_version" {
  type = string
}
module "vpc" {
  source = "terraform-aws-modules/vpc/aws"
}
""",
    )
    assert unvalidated_variables(module, ["kubernetes_version"]) == ["kubernetes_version"]
    problems = pinning_problems(module)
    assert any("upper bound" in p for p in problems)
    assert any("not ~> pinned" in p for p in problems)
    assert any("not local" in p for p in problems)
