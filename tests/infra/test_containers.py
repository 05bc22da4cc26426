"""The containers the manifests run: every image is one components/images builds and docs/runbook.md pushes
to this account's ECR (a repository Terraform creates), and every container's command accepts the
arguments its controller appends: each command line is parsed by the real `aidetect` entry point, and the
explainer is started with exactly what KServe gives it.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import click
import hcl2
import httpx
import pytest
import yaml

from aidetect.cli import main as aidetect_main
from aidetect.gitops import render as r
from tests.helpers import servers
from tests.integration.test_explain_server import _checkpoint  # the small Grad-CAM checkpoint

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
IMAGES = REPO / "components" / "images"
OVERLAYS = ("staging", "canary", "production")
# The Terraform environment (account, region) whose cluster runs each overlay.
CLUSTER_OF = {"staging": "staging", "canary": "production", "production": "production"}


def built_images() -> dict[str, str]:
    """Image name (the Dockerfile's org.opencontainers.image.title) -> components/images/<dir>."""
    out = {}
    for dockerfile in sorted(IMAGES.glob("*/Dockerfile")):
        m = re.search(r'org\.opencontainers\.image\.title="([^"]+)"', dockerfile.read_text())
        assert m, f"{dockerfile}: no image title label"
        out[m.group(1)] = dockerfile.parent.name
    return out


def _tfvars(env: str) -> dict:
    with open(REPO / "terraform" / "envs" / env / "terraform.tfvars") as fh:
        return hcl2.load(fh)


def _ecr_repositories() -> list[str]:
    with open(REPO / "terraform" / "modules" / "ecr" / "variables.tf") as fh:
        variables = {k: v for entry in hcl2.load(fh)["variable"] for k, v in entry.items()}
    return [s.strip('"') for s in variables['"repositories"']["default"]]


def _rendered(env: str, with_gpu: bool = False, tmp: Path | None = None) -> list[dict]:
    if not with_gpu:
        return r.render(MANIFESTS / "overlays" / env)
    assert tmp is not None
    root = tmp / "manifests"
    shutil.copytree(MANIFESTS, root)
    kustomization = root / "overlays" / env / "kustomization.yaml"
    doc = yaml.safe_load(kustomization.read_text())
    doc["components"] = ["../../components/gpu"]
    kustomization.write_text(yaml.safe_dump(doc))
    return r.render(root / "overlays" / env)


def _images(docs: list[dict]) -> set[str]:
    return {
        str(value) for doc in docs for key, value in _walk(doc) if key == "image" and isinstance(value, str)
    }


def _walk(value):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key, inner
            yield from _walk(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _walk(inner)


def image_problems(images: set[str], registry: str, built: set[str], repositories: set[str]) -> list[str]:
    """Each image that is not <this account's ECR>/<an image components/images builds and ECR holds>:<tag>."""
    out = []
    for image in sorted(images):
        host, _, rest = image.partition("/")
        name = rest.rpartition(":")[0]
        if host != registry:
            out.append(f"{image} is not pulled from this account's ECR ({registry})")
        if name not in built:
            out.append(f"{image}: components/images builds no {name} (builds {sorted(built)})")
        if name not in repositories:
            out.append(f"{image}: terraform/modules/ecr creates no repository {name}")
    return out


@pytest.mark.parametrize("env", OVERLAYS)
def test_every_image_is_built_here_and_pulled_from_this_accounts_ecr(env: str, tmp_path: Path) -> None:
    tfvars = _tfvars(CLUSTER_OF[env])
    account, region = (str(tfvars[k]).strip('"') for k in ("aws_account_id", "region"))
    registry = f"{account}.dkr.ecr.{region}.amazonaws.com"
    images = _images(_rendered(env)) | _images(_rendered(env, with_gpu=True, tmp=tmp_path))
    assert images
    assert image_problems(images, registry, set(built_images()), set(_ecr_repositories())) == []


def test_image_check_catches_a_foreign_registry_and_an_unbuilt_image() -> None:
    registry = "111111111111.dkr.ecr.us-east-1.amazonaws.com"
    built = set(built_images())
    assert {"aidetect-serve", "aidetect-explain", "aidetect-train"} <= built
    found = image_problems(
        {"ghcr.io/aidetect/aidetect-serve:0.1.0", f"{registry}/aidetect-gradcam:0.1.0"},
        registry,
        built,
        built,
    )
    foreign, unbuilt = "ghcr.io/aidetect/aidetect-serve:0.1.0", f"{registry}/aidetect-gradcam:0.1.0"
    assert any(p.startswith(f"{foreign} is not pulled from this account's ECR") for p in found)
    assert f"{unbuilt}: terraform/modules/ecr creates no repository aidetect-gradcam" in found
    assert any(p.startswith(f"{unbuilt}: components/images builds no aidetect-gradcam") for p in found)
    assert not any(p.startswith(registry + "/aidetect-serve") for p in found)


def test_the_runbook_builds_and_pushes_every_image() -> None:
    runbook = (REPO / "docs" / "runbook.md").read_text()
    for name, directory in built_images().items():
        build = rf"-f components/images/{directory}/Dockerfile\s.*-t \$REG/{name}:\$TAG\b"
        assert re.search(build, runbook), f"docs/runbook.md does not build {name}"
        assert re.search(rf"push \$REG/{name}:\$TAG\b", runbook), f"docs/runbook.md does not push {name}"
    # the GPU component's tag is the serving image built with onnxruntime-gpu
    assert re.search(r"ONNXRUNTIME_GPU=\S+ .*-t \$REG/aidetect-serve:\$TAG-cuda", runbook)
    assert re.search(r"push \$REG/aidetect-serve:\$TAG-cuda\b", runbook)
    gpu = (MANIFESTS / "components" / "gpu" / "kustomization.yaml").read_text()
    assert re.search(r"aidetect-serve:[\w.]+-cuda", gpu)


# --- the arguments controllers append -----------------------------------------------------------


def kserve_explainer_args(isvc: dict, container: dict) -> list[str]:
    """What KServe (v0.16, CustomExplainer.GetContainer) appends to a custom explainer's args:
    --model_name <isvc> and --predictor_host <isvc>-predictor.<ns> unless present, --http_port 8080 always,
    --workers N when the component sets containerConcurrency."""
    args = list(container.get("args") or [])
    meta = isvc["metadata"]
    if "--model_name" not in args:
        args += ["--model_name", meta["name"]]
    if "--predictor_host" not in args:
        args += ["--predictor_host", f"{meta['name']}-predictor.{meta.get('namespace')}"]
    args += ["--http_port", "8080"]
    concurrency = (isvc["spec"].get("explainer") or {}).get("containerConcurrency")
    if "--workers" not in args and concurrency is not None:
        args += ["--workers", str(concurrency)]
    return args


def command_lines(docs: list[dict]) -> list[tuple[str, list[str]]]:
    """(where, argv) of every aidetect container, with what its controller adds."""
    out = []
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "InferenceService"}
    for workload in r.kserve_workloads(docs):
        isvc = services[workload["metadata"]["labels"]["serving.kserve.io/inferenceservice"]]
        component = workload["metadata"]["labels"]["component"]
        for container in workload["spec"]["template"]["spec"]["containers"]:
            args = list(container.get("args") or [])
            if component == "explainer":
                args = kserve_explainer_args(isvc, container)
            # ServingRuntime containers get no appended arguments; KServe only fills {{.Name}}-style fields
            args = [a.replace("{{.Name}}", isvc["metadata"]["name"]) for a in args]
            out.append((f"{workload['metadata']['name']}/{container['name']}", container["command"] + args))
    for doc in docs:
        if doc["kind"] != "CronWorkflow":
            continue
        templates = doc["spec"]["workflowSpec"]["templates"]
        for template in templates:
            container = template.get("container")
            if not container:
                continue
            argv = [
                re.sub(r"\$\((\w+)\)", "s3://bucket/x", a)
                for a in container["command"] + container.get("args", [])
            ]
            # a parameterised template runs once per step that calls it, with that step's values
            for values in _step_inputs(templates, template["name"]) or [{}]:
                expanded = [
                    re.sub(r"\{\{inputs\.parameters\.(\w+)\}\}", lambda m, v=values: v[m[1]], a) for a in argv
                ]
                out.append((f"CronWorkflow/{doc['metadata']['name']}", expanded))
    return out


def _step_inputs(templates: list[dict], name: str) -> list[dict[str, str]]:
    """The input parameters each step of ``templates`` passes to the template ``name``."""
    calls = [
        step
        for t in templates
        for group in t.get("steps") or []
        for step in group
        if step.get("template") == name
    ]
    return [{p["name"]: p["value"] for p in (c.get("arguments") or {}).get("parameters", [])} for c in calls]


def parse(argv: list[str]) -> click.Context:
    """Parse argv with the `aidetect` entry point down to its command, converting every value, without
    running it: what exits 2 here exits 2 in the pod."""
    assert argv[0] == "aidetect", argv
    ctx = aidetect_main.make_context("aidetect", list(argv[1:]))
    command: click.Command = aidetect_main
    rest = ctx.protected_args + ctx.args
    while isinstance(command, click.Group) and rest:
        name, command, rest = command.resolve_command(ctx, rest)
        ctx = command.make_context(name, rest, parent=ctx)
        rest = ctx.protected_args + ctx.args if isinstance(command, click.Group) else []
    return ctx


def _all_docs() -> list[dict]:
    docs = [d for env in OVERLAYS for d in r.render(MANIFESTS / "overlays" / env)]
    return docs + r.render(MANIFESTS / "monitoring")


def test_every_container_accepts_what_its_controller_appends() -> None:
    lines = command_lines(_all_docs())
    assert {where.split("/")[0] for where, _ in lines} >= {
        "aidetect-predictor",
        "aidetect-explainer",
        "aidetect-canary-explainer",
        "CronWorkflow",
    }
    for where, argv in lines:
        try:
            parse(argv)
        except click.UsageError as exc:
            pytest.fail(f"{where}: `{' '.join(argv)}` exits 2: {exc.format_message()}")


def test_parse_rejects_what_the_command_lacks() -> None:
    with pytest.raises(click.UsageError, match="--no-such-flag"):
        parse(["aidetect", "explain", "--serve", "--model", "m.pt", "--no-such-flag", "1"])
    with pytest.raises(click.BadParameter):
        parse(["aidetect", "explain", "--serve", "--model", "m.pt", "--http_port", "eighty"])


@pytest.mark.slow
def test_explainer_serves_with_the_arguments_kserve_gives_it(tmp_path: Path) -> None:
    """The staging explainer's command line as KServe completes it, run for real: only the checkpoint path
    (the storage initializer's mount) and the port (8080 may be taken here) are swapped."""
    docs = r.render(MANIFESTS / "overlays" / "staging")
    (argv,) = [a for where, a in command_lines(docs) if where.startswith("aidetect-explainer/")]
    assert "--predictor_host" in argv and "--http_port" in argv
    ckpt = _checkpoint(tmp_path / "model.pt")
    port = servers.free_port()
    argv = [str(ckpt) if a == "/mnt/checkpoint/model.pt" else a for a in argv]
    argv[argv.index("--http_port") + 1] = str(port)
    cmd = [sys.executable, "-m", "aidetect.cli", *argv[1:]]
    url = f"http://127.0.0.1:{port}"
    with servers.running(cmd, f"{url}/v2/health/ready", tmp_path / "explainer.log", timeout=120):
        ready = httpx.get(f"{url}/v2/models/aidetect/ready", timeout=10)
        assert ready.status_code == 200, ready.text
