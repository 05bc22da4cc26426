"""Static and check-mode tests of ansible/: syntax, ansible-lint (production profile), the Terraform-outputs
feed of the inventory, and a check-mode run that validates every task's module arguments against the
kubernetes.core collection bundled with the pinned `ansible` package.

No Kubernetes API server exists here, so the check-mode run goes as far as it can: each task must fail only
because the cluster cannot be reached (or, for Helm tasks, because the helm CLI is not installed on this
machine), never because of its arguments. A deliberately broken task proves the classifier notices.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.infra import ansible_graph

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_DIR = REPO / "ansible"
ROLES = sorted(p.name for p in (ANSIBLE_DIR / "roles").iterdir() if (p / "tasks" / "main.yml").is_file())

# Messages of a task that got past argument validation and stopped at the missing cluster.
CLUSTER_UNREACHABLE = (
    "Failed to get client due to",
    "Max retries exceeded",
    "Connection refused",
    "Kubernetes cluster unreachable",
)
# A Helm task validated its arguments, then needed the helm CLI, which no registry reachable here ships.
HELM_CLI_MISSING = 'Failed to find required executable "helm"'
GIT_REPO_URL = "https://git.example.com/acme/aidetect.git"
ARGUMENT_ERRORS = (
    "Unsupported parameters",
    "missing required arguments",
    "value of",
    "is of type",
    "mutually exclusive",
    "parameters are required together",
)


def venv_tool(name: str) -> str:
    """A tool from PATH, else from the repo's .venv-infra; fails with how to get it."""
    for candidate in (shutil.which(name), REPO / ".venv-infra" / "bin" / name):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    pytest.fail(f"{name} not found: run `make infra-venv` (requirements/infra.txt)")


def ansible_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment for ansible-playbook: kubectl (kustomize lookups) on PATH, repo config, private temp."""
    tool_dirs = [
        str(REPO / ".venv-infra" / "bin"),
        str(REPO / ".venv" / "bin"),
        str(Path(sys.executable).parent),
    ]
    env = dict(os.environ)
    env.update(
        PATH=os.pathsep.join([*tool_dirs, env.get("PATH", "")]),
        ANSIBLE_CONFIG=str(ANSIBLE_DIR / "ansible.cfg"),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"),
        ANSIBLE_HOME=str(tmp_path / "ansible-home"),
        ANSIBLE_NOCOLOR="1",
        **extra,
    )
    return env


def run(cmd: list[str], env: dict[str, str], cwd: Path = ANSIBLE_DIR, timeout: int = 300):
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def closed_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def terraform_outputs(environment: str) -> dict:
    """What `terraform output -json` prints for envs/<environment> (shape of modules/platform/outputs.tf)."""
    value = {
        "environment": environment,
        "aws_region": "us-east-1",
        "aws_account_id": "111111111111",
        "cluster_name": f"aidetect-{environment}",
        "cluster_endpoint": "https://EXAMPLE.gr7.us-east-1.eks.amazonaws.com",
        "cluster_version": "1.33",
        "kms_key_arn": "arn:aws:kms:us-east-1:111111111111:key/00000000-0000-0000-0000-000000000000",
        "buckets": {
            k: f"aidetect-{environment}-111111111111-{k}" for k in ("datasets", "artifacts", "inference-logs")
        },
        "ecr_repositories": {
            k: f"111111111111.dkr.ecr.us-east-1.amazonaws.com/{k}"
            for k in ("aidetect-train", "aidetect-serve", "aidetect-explain")
        },
        "irsa_role_arns": {
            k: f"arn:aws:iam::111111111111:role/aidetect-{environment}-{k}"
            for k in ("pipelines", "predictor", "mlflow", "monitoring", "cluster_autoscaler", "ebs_csi")
        },
        "service_accounts": {"predictor": f"aidetect-{environment}/aidetect-predictor"},
        "gpu_node_groups": {},
        "database_host": f"aidetect-{environment}-metadata.example.us-east-1.rds.amazonaws.com",
        "database_port": 5432,
        "database_username": "aidetect_admin",
        "database_secret": "arn:aws:secretsmanager:us-east-1:111111111111:secret:rds!db-example",
        "serving_hostname": f"detect.{environment}.aidetect.example.com",
        "route53_zone_id": "Z0000000000EXAMPLE1",
        "gateway_cert_arn": "arn:aws:acm:us-east-1:111111111111:certificate/0000-example",
    }
    return {"ansible": {"sensitive": False, "type": "object", "value": value}}


def staged_inventory(tmp_path: Path, environment: str = "staging") -> Path:
    """A copy of ansible/inventory/<env> (tf_outputs.yml writes into the inventory it is given)."""
    inventory = tmp_path / "inventory" / environment
    shutil.copytree(ANSIBLE_DIR / "inventory" / environment, inventory)
    return inventory


def feed_inventory(tmp_path: Path, inventory: Path, outputs: dict) -> subprocess.CompletedProcess:
    outputs_file = tmp_path / "tf-outputs.json"
    outputs_file.write_text(json.dumps(outputs))
    cmd = [venv_tool("ansible-playbook"), "-i", str(inventory), "tf_outputs.yml"]
    cmd += ["-e", f"aidetect_tf_outputs_file={outputs_file}"]
    return run(cmd, ansible_env(tmp_path))


# ---------------------------------------------------------------- syntax and lint


@pytest.mark.parametrize("playbook", ["site.yml", "tf_outputs.yml"])
def test_playbook_syntax(playbook: str, tmp_path: Path) -> None:
    res = run(
        [venv_tool("ansible-playbook"), "-i", "inventory/staging", playbook, "--syntax-check"],
        ansible_env(tmp_path),
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_syntax_check_rejects_a_broken_playbook(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "- hosts: all\n  tasks:\n    - name: two modules in one task\n"
        "      ansible.builtin.ping:\n      ansible.builtin.debug:\n"
    )
    res = run(
        [venv_tool("ansible-playbook"), "-i", "localhost,", str(broken), "--syntax-check"],
        ansible_env(tmp_path),
    )
    assert res.returncode != 0
    assert "conflicting action statements" in (res.stdout + res.stderr)


@pytest.fixture(scope="module")
def lint_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess]:
    """ansible-lint (production profile, offline) over ansible/ and over a deliberately sloppy role."""
    tmp = tmp_path_factory.mktemp("lint")
    sloppy = tmp / "sloppy"
    (sloppy / "roles" / "sloppy" / "tasks").mkdir(parents=True)
    shutil.copy(ANSIBLE_DIR / ".ansible-lint", sloppy / ".ansible-lint")
    (sloppy / "site.yml").write_text("---\n- name: Sloppy\n  hosts: all\n  roles: [sloppy]\n")
    (sloppy / "roles" / "sloppy" / "tasks" / "main.yml").write_text(
        "---\n- name: Apply with kubectl instead of a module\n"
        "  ansible.builtin.shell: kubectl apply -f x.yaml\n"
    )
    env = ansible_env(tmp)
    lint = venv_tool("ansible-lint")
    return {
        "repo": run(
            [lint, "--offline", "--profile", "production", "--nocolor"], env, cwd=ANSIBLE_DIR, timeout=600
        ),
        "sloppy": run(
            [lint, "--offline", "--profile", "production", "--nocolor"], env, cwd=sloppy, timeout=600
        ),
    }


@pytest.mark.slow
def test_ansible_lint_production_profile_passes(lint_results: dict) -> None:
    res = lint_results["repo"]
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert "Profile 'production' was required, and it passed" in res.stdout + res.stderr


@pytest.mark.slow
def test_ansible_lint_flags_a_sloppy_role(lint_results: dict) -> None:
    res = lint_results["sloppy"]
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "no-changed-when" in out or "command-instead-of-shell" in out, out[-3000:]


# ---------------------------------------------------------------- inventory fed by Terraform outputs


def test_terraform_outputs_become_group_vars(tmp_path: Path) -> None:
    inventory = staged_inventory(tmp_path)
    res = feed_inventory(tmp_path, inventory, terraform_outputs("staging"))
    assert res.returncode == 0, res.stdout + res.stderr
    written = inventory / "group_vars" / "all" / "terraform.yml"
    data = yaml.safe_load(written.read_text())
    assert data["aidetect_tf"]["cluster_name"] == "aidetect-staging"
    assert data["aidetect_tf"]["irsa_role_arns"]["predictor"].endswith(":role/aidetect-staging-predictor")
    assert oct(written.stat().st_mode & 0o777) == "0o600"
    inv = run(
        [venv_tool("ansible-inventory"), "-i", str(inventory), "--host", "staging-cluster"],
        ansible_env(tmp_path),
    )
    assert (
        json.loads(inv.stdout)["aidetect_tf"]["buckets"]["artifacts"]
        == "aidetect-staging-111111111111-artifacts"
    )


def test_outputs_of_another_environment_are_refused(tmp_path: Path) -> None:
    inventory = staged_inventory(tmp_path)
    res = feed_inventory(tmp_path, inventory, terraform_outputs("production"))
    assert res.returncode != 0
    assert "are not those of staging" in res.stdout
    assert not (inventory / "group_vars" / "all" / "terraform.yml").exists()


# ---------------------------------------------------------------- check mode against an unreachable cluster


def check_mode_playbook(tmp_path: Path) -> Path:
    """site.yml made to keep going after each failure (ignore_errors), plus one deliberately broken task."""
    plays = yaml.safe_load((ANSIBLE_DIR / "site.yml").read_text())
    play = plays[0]
    play["ignore_errors"] = True
    play["vars_files"] = [str(ANSIBLE_DIR / "group_vars" / "all" / "main.yml")]
    play["roles"] = [{**r, "role": str(ANSIBLE_DIR / "roles" / r["role"])} for r in play["roles"]]
    broken = {
        "name": "Deliberately broken task",
        "hosts": play["hosts"],
        "gather_facts": False,
        "ignore_errors": True,
        "module_defaults": play["module_defaults"],
        "vars_files": play["vars_files"],
        "tasks": [
            {
                "name": "k8s with an argument the module does not have",
                "kubernetes.core.k8s": {"state": "present", "definiton": {"kind": "Namespace"}},
            }
        ],
    }
    path = tmp_path / "check_site.yml"
    path.write_text(yaml.safe_dump([play, broken], sort_keys=False))
    return path


def kubeconfig(tmp_path: Path, context: str) -> Path:
    """A kubeconfig whose cluster is a loopback port nothing listens on."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": f"https://127.0.0.1:{closed_port()}"}}],
        "users": [{"name": "ci", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": "ci"}}],
        "current-context": context,
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def task_outcomes(callback_json: dict) -> list[dict]:
    """Flatten the json callback: one entry per task (or loop item): play, task, action, failure message."""
    outcomes = []
    for play in callback_json["plays"]:
        for task in play["tasks"]:
            for result in task["hosts"].values():
                items = result.get("results") or [result]
                for item in items:
                    outcomes.append(
                        {
                            "play": play["play"]["name"],
                            "task": task["task"]["name"],
                            "action": result.get("action", ""),
                            "failed": bool(item.get("failed")),
                            "skipped": bool(item.get("skipped")),
                            "msg": str(item.get("msg", "")),
                            "args": (item.get("invocation") or {}).get("module_args") or {},
                        }
                    )
    return outcomes


def classify(outcome: dict) -> str:
    """ok | cluster-unreachable | helm-cli-missing | argument-error | other."""
    if not outcome["failed"]:
        return "ok"
    msg = outcome["msg"]
    if any(marker in msg for marker in ARGUMENT_ERRORS):
        return "argument-error"
    if HELM_CLI_MISSING in msg:
        return "helm-cli-missing"
    if any(marker in msg for marker in CLUSTER_UNREACHABLE):
        return "cluster-unreachable"
    return "other"


@pytest.fixture(scope="module")
def check_run(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    tmp = tmp_path_factory.mktemp("check")
    inventory = staged_inventory(tmp)
    fed = feed_inventory(tmp, inventory, terraform_outputs("staging"))
    assert fed.returncode == 0, fed.stdout + fed.stderr
    env = ansible_env(
        tmp,
        KUBECONFIG=str(kubeconfig(tmp, "aidetect-staging")),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_CALLBACK_RESULT_FORMAT="json",
    )
    # Test-only values for the vault variables; real ones come from Ansible Vault, never from the repo.
    secrets = {
        "vault_grafana_admin_password": "check-mode-only-grafana",
        "vault_db_master_password": "check-mode-only-master",
        "vault_mlflow_db_password": "check-mode-only-mlflow",
        "aidetect_repo_root": str(REPO),
        "aidetect_no_log": "false",
        # not the URL argocd/ names: the Applications must follow the inventory's repository
        "aidetect_git_repo_url": GIT_REPO_URL,
    }
    cmd = [
        venv_tool("ansible-playbook"),
        "-i",
        str(inventory),
        str(check_mode_playbook(tmp)),
        "--check",
        "--diff",
    ]
    for key, value in secrets.items():
        cmd += ["-e", f"{key}={value}"]
    cmd += ["-e", json.dumps({"vault_aidetect_serving_tokens": ["check-mode-only-token"]})]  # a list
    res = run(cmd, env, timeout=600)
    start = res.stdout.find("{")
    assert start >= 0, res.stdout[-3000:] + res.stderr[-3000:]
    return task_outcomes(json.loads(res.stdout[start:]))


@pytest.mark.slow
def test_check_mode_reaches_every_role(check_run: list[dict]) -> None:
    ran_roles = {Path(o["task"].split(" : ")[0]).name for o in check_run if " : " in o["task"]}
    assert ran_roles == set(ROLES), f"roles without a task that ran: {set(ROLES) - ran_roles}"


@pytest.mark.slow
def test_check_mode_fails_only_for_lack_of_a_cluster(check_run: list[dict]) -> None:
    real = [o for o in check_run if o["play"] != "Deliberately broken task"]
    kinds = {(o["task"], classify(o), o["msg"][:200]) for o in real}
    bad = sorted(k for k in kinds if k[1] not in ("ok", "cluster-unreachable", "helm-cli-missing"))
    assert not bad, "tasks failing for another reason than the missing cluster:\n" + "\n".join(map(str, bad))
    k8s_failures = [o for o in real if o["action"].startswith("kubernetes.core.k8s") and o["failed"]]
    assert k8s_failures and all(classify(o) == "cluster-unreachable" for o in k8s_failures)
    helm_tasks = [o for o in real if o["action"] == "kubernetes.core.helm"]
    assert helm_tasks and all(classify(o) in ("helm-cli-missing", "cluster-unreachable") for o in helm_tasks)


@pytest.mark.slow
def test_check_mode_flags_a_wrong_module_argument(check_run: list[dict]) -> None:
    broken = [o for o in check_run if o["play"] == "Deliberately broken task"]
    assert [classify(o) for o in broken] == ["argument-error"], broken
    assert "definiton" in broken[0]["msg"]


# ---------------------------------------------------------------- dependency order of the roles


def _render_local(path: str) -> list[dict]:
    from aidetect.gitops import render as r

    return r.render(REPO / path) if (REPO / path).is_dir() else []


@pytest.mark.slow
def test_each_role_finds_what_it_needs_made_by_an_earlier_one(check_run: list[dict]) -> None:
    """site.yml order on an empty cluster: namespaces, CRDs, Secrets and the default StorageClass each
    task needs are made (or waited for) by a task before it (tests/infra/ansible_graph.py)."""
    real = [o for o in check_run if o["play"] != "Deliberately broken task"]
    ordered = ansible_graph.steps(real, _render_local)
    provided = set().union(*(s.provides for s in ordered))
    # the run really exercised the graph: it saw what the later roles rely on being provided
    assert {
        "namespace aidetect-staging",
        "CRD cronworkflows.argoproj.io",
        ansible_graph.DEFAULT_STORAGE_CLASS,
    } <= provided
    assert {"CRD inferenceservices.serving.kserve.io", "Secret mlflow/mlflow-db"} <= provided
    assert ansible_graph.unmet(ordered) == []


def test_dependency_graph_flags_a_need_met_too_late() -> None:
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x", "namespace": "aidetect-staging"},
    }
    cron = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "CronWorkflow",
        "metadata": {"name": "c", "namespace": "ns"},
    }
    outcomes = [
        {"task": "monitoring : Apply", "action": "kubernetes.core.k8s", "args": {"definition": configmap}},
        {"task": "monitoring : Cron", "action": "kubernetes.core.k8s", "args": {"definition": [cron]}},
        {
            "task": "kserve : Namespaces",
            "action": "kubernetes.core.k8s",
            "args": {
                "definition": {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": "aidetect-staging"},
                }
            },
        },
        {
            "task": "grafana : Install",
            "action": "kubernetes.core.helm",
            "args": {
                "release_namespace": "ns",
                "create_namespace": True,
                "values": {"admin": {"existingSecret": "g"}},
            },
        },
    ]
    problems = ansible_graph.unmet(ansible_graph.steps(outcomes))
    assert "monitoring : Apply: needs namespace aidetect-staging, which no earlier task provides" in problems
    assert (
        "monitoring : Cron: needs CRD cronworkflows.argoproj.io, which no earlier task provides" in problems
    )
    assert "grafana : Install: needs Secret ns/g, which no earlier task provides" in problems
    # waiting for the CRD first, in the same order, meets the need
    wait = {
        "task": "kfp : Wait",
        "action": "kubernetes.core.k8s_info",
        "args": {"kind": "CustomResourceDefinition", "name": "cronworkflows.argoproj.io", "wait": True},
    }
    problems = ansible_graph.unmet(ansible_graph.steps([wait, *outcomes]))
    assert not any("cronworkflows" in p for p in problems)


@pytest.mark.slow
def test_argo_cd_follows_the_inventory_repository(check_run: list[dict]) -> None:
    """aidetect_git_repo_url, not the URL written in argocd/, is what the project and Applications use."""
    applied = [
        o["args"]["definition"]
        for o in check_run
        if o["action"] == "kubernetes.core.k8s" and isinstance(o["args"].get("definition"), dict)
    ]
    projects = [
        d for d in applied if d.get("kind") == "AppProject" and d["metadata"]["namespace"] == "argocd"
    ]
    (appset,) = [d for d in applied if d.get("kind") == "ApplicationSet"]
    assert projects and all(
        p["spec"]["sourceRepos"] == [GIT_REPO_URL]
        for p in projects
        if p["metadata"]["name"].startswith("aidetect")
    )
    assert appset["spec"]["template"]["spec"]["source"]["repoURL"] == GIT_REPO_URL
    assert [e["env"] for e in appset["spec"]["generators"][0]["list"]["elements"]] == ["staging"]


@pytest.mark.slow
def test_scheduled_workloads_pull_from_this_accounts_ecr(check_run: list[dict]) -> None:
    """manifests/monitoring names images as components/images builds them; Ansible prefixes the registry of
    the Terraform outputs' ECR repositories, and runs them in the serving namespace."""
    registry = "111111111111.dkr.ecr.us-east-1.amazonaws.com"  # terraform_outputs() above
    crons = [
        o["args"]["definition"]
        for o in check_run
        if isinstance(o["args"].get("definition"), dict)
        and o["args"]["definition"].get("kind") == "CronWorkflow"
    ]
    assert len(crons) == 5  # drift check, periodic retrain, and the closed loop's review sync, quality, loop
    for cron in crons:
        assert cron["metadata"]["namespace"] == "aidetect-staging"
        for template in cron["spec"]["workflowSpec"]["templates"]:
            if "steps" in template:  # a steps template runs the container templates beside it
                continue
            assert template["container"]["image"].startswith(f"{registry}/aidetect-train:"), template


def _applied(check_run: list[dict]) -> list[dict]:
    """Every object a kubernetes.core.k8s task applied (definitions may be lists)."""
    out = []
    for o in check_run:
        if o["action"] != "kubernetes.core.k8s":
            continue
        definition = o["args"].get("definition")
        out += [
            d for d in (definition if isinstance(definition, list) else [definition]) if isinstance(d, dict)
        ]
    return out


def workflow_report_problems(applied: list[dict]) -> list[str]:
    """Argo's executor writes each step's WorkflowTaskResult with the pod's service-account token: each
    CronWorkflow's pods need a mounted token and a Role granting create/patch on workflowtaskresults."""
    out = []
    for cron in (d for d in applied if d["kind"] == "CronWorkflow"):
        ns, spec = cron["metadata"]["namespace"], cron["spec"]["workflowSpec"]
        account = spec.get("serviceAccountName", "default")
        sa = next(
            (
                d
                for d in applied
                if d["kind"] == "ServiceAccount"
                and (d["metadata"]["name"], d["metadata"]["namespace"]) == (account, ns)
            ),
            {},
        )
        if not spec.get("automountServiceAccountToken", sa.get("automountServiceAccountToken", True)):
            out.append(f"{cron['metadata']['name']}: no service-account token in its pods")
        roles = {
            d["metadata"]["name"]
            for d in applied
            if d["kind"] == "Role"
            and d["metadata"]["namespace"] == ns
            and any(
                "argoproj.io" in rule.get("apiGroups", [])
                and "workflowtaskresults" in rule.get("resources", [])
                and {"create", "patch"} <= set(rule.get("verbs", []))
                for rule in d.get("rules", [])
            )
        }
        bound = any(
            d["kind"] == "RoleBinding"
            and d["metadata"]["namespace"] == ns
            and d["roleRef"]["name"] in roles
            and {"kind": "ServiceAccount", "name": account, "namespace": ns} in d.get("subjects", [])
            for d in applied
        )
        if not bound:
            out.append(f"{cron['metadata']['name']}: {ns}/{account} may not create workflowtaskresults")
    return out


@pytest.mark.slow
def test_workflow_pods_can_report_their_results(check_run: list[dict]) -> None:
    applied = _applied(check_run)
    assert [d for d in applied if d["kind"] == "CronWorkflow"]
    assert workflow_report_problems(applied) == []


def test_workflow_report_check_flags_a_tokenless_unbound_account() -> None:
    cron = {
        "kind": "CronWorkflow",
        "metadata": {"name": "drift", "namespace": "ns"},
        "spec": {"workflowSpec": {"serviceAccountName": "mon"}},
    }
    sa = {
        "kind": "ServiceAccount",
        "metadata": {"name": "mon", "namespace": "ns"},
        "automountServiceAccountToken": False,
    }
    assert workflow_report_problems([cron, sa]) == [
        "drift: no service-account token in its pods",
        "drift: ns/mon may not create workflowtaskresults",
    ]
