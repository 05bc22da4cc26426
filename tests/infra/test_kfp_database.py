"""Kubeflow Pipelines' database settings against what the pinned KFP release reads.

KFP has no chart: ansible/roles/kubeflow_pipelines has Argo CD sync one of the release's kustomize
overlays at `aidetect_versions.kfp_manifests_ref`, patched. What each overlay of that release reads is
recorded below (from the release's manifests and API server, as reviewed for issue 21); a patch, Secret or
database setting that the release does not read, or a TLS mode the database refuses, fails here instead
of as a crash-looping API server.
"""

from __future__ import annotations

from pathlib import Path

import hcl2
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLES = REPO / "ansible" / "roles"

# kfp_manifests_ref -> overlay -> what it reads.
KFP_READS: dict[str, dict[str, dict]] = {
    "2.18.0": {
        # The API server's PostgreSQL DSN is built with sslmode=disable; it reads its credentials from the
        # postgres-secret-extended Secret (username, password) and host/port/db from pipeline-install-config.
        # ML Metadata keeps a database of its own. No key adds connection parameters.
        "manifests/kustomize/env/platform-agnostic-postgresql": {
            "database": "external-postgresql",
            "api_server_sslmode": "disable",
            "secret": "postgres-secret-extended",
            "secret_keys": {"username", "password"},
            "install_config_keys": {
                "postgresHost",
                "postgresPort",
                "pipelineDb",
                "cacheDb",
                "mlmdDb",
                "dbType",
            },
            "metadata_shares_database": False,
        },
        # Bundled MySQL (PVC on the default StorageClass) for the API server and ML Metadata alike.
        "manifests/kustomize/env/platform-agnostic": {"database": "bundled"},
    }
}
DB_KEYS = {"postgresHost", "postgresPort", "pipelineDb", "cacheDb", "mlmdDb", "dbType", "postgresExtraParams"}


def _yaml(path: Path):
    return yaml.safe_load(path.read_text())


def kfp_settings() -> dict:
    """Pin, overlay, pipeline-install-config keys patched, Secrets Ansible writes to kubeflow."""
    defaults = _yaml(ROLES / "kubeflow_pipelines" / "defaults" / "main.yml")
    tasks = _yaml(ROLES / "kubeflow_pipelines" / "tasks" / "main.yml")
    env_path = defaults["kubeflow_pipelines_env_path"]
    patched: set[str] = set()
    for task in tasks:
        for item in task.get("loop", []) if isinstance(task.get("loop"), list) else []:
            if not isinstance(item, dict) or item.get("path") != "{{ kubeflow_pipelines_env_path }}":
                continue
            for patch in item.get("patches", []):
                var = str(patch["patch"]).strip("{} ")
                doc = yaml.safe_load(defaults[var]) if var in defaults else {}
                if (doc.get("metadata") or {}).get("name") == "pipeline-install-config":
                    patched |= set((doc.get("data") or {}).keys())
    secrets = {}
    for task in _yaml(ROLES / "metadata_db" / "tasks" / "main.yml"):
        for item in task.get("loop", []) if isinstance(task.get("loop"), list) else []:
            if isinstance(item, dict) and item.get("namespace") == "kubeflow":
                secrets[item["name"]] = set(item["data"])
    versions = _yaml(REPO / "ansible" / "group_vars" / "all" / "main.yml")["aidetect_versions"]
    return {
        "ref": versions["kfp_manifests_ref"],
        "env_path": env_path,
        "patched": patched,
        "secrets": secrets,
    }


def rds_forces_tls() -> bool:
    with open(REPO / "terraform" / "modules" / "database" / "main.tf") as fh:
        doc = hcl2.load(fh)
    for entry in doc["resource"]:
        for body in entry.get('"aws_db_parameter_group"', {}).values():
            for param in body.get("parameter", []):
                if param["name"].strip('"') == "rds.force_ssl":
                    return param["value"].strip('"') == "1"
    return False


def problems(settings: dict, force_tls: bool) -> list[str]:
    release = KFP_READS.get(settings["ref"])
    if release is None:
        return [f"KFP {settings['ref']}: what its overlays read is not recorded here; review and add it"]
    reads = release.get(settings["env_path"])
    if reads is None:
        return [f"KFP {settings['ref']} overlay {settings['env_path']} is not recorded here"]
    out = []
    if reads["database"] == "bundled":
        out += [
            f"pipeline-install-config sets {k}, but the overlay uses its bundled database"
            for k in sorted(settings["patched"] & DB_KEYS)
        ]
        out += [
            f"Secret kubeflow/{name} is written but the bundled database reads none"
            for name in sorted(settings["secrets"])
        ]
        return out
    if force_tls and reads["api_server_sslmode"] == "disable":
        out.append("the KFP API server connects with sslmode=disable, and the RDS parameter group forces TLS")
    if settings["secrets"].get(reads["secret"]) != reads["secret_keys"]:
        out.append(
            f"the API server reads Secret {reads['secret']} {sorted(reads['secret_keys'])}; "
            f"Ansible writes {settings['secrets']}"
        )
    out += [
        f"pipeline-install-config key {k} is read by nothing"
        for k in sorted(settings["patched"] - reads["install_config_keys"])
    ]
    if not reads["metadata_shares_database"]:
        out.append("ML Metadata would still run its own in-cluster database")
    return out


def test_kfp_database_settings_match_the_pinned_release() -> None:
    settings = kfp_settings()
    assert settings["ref"] in KFP_READS
    assert problems(settings, rds_forces_tls()) == []


def test_kfp_check_catches_the_postgres_overlay_on_rds() -> None:
    on_rds = {
        "ref": "2.18.0",
        "env_path": "manifests/kustomize/env/platform-agnostic-postgresql",
        "patched": {"postgresHost", "postgresPort", "pipelineDb", "postgresExtraParams"},
        "secrets": {"postgres-secret": {"username", "password"}},
    }
    found = problems(on_rds, force_tls=True)
    assert any("sslmode=disable" in p for p in found)
    assert any("postgres-secret-extended" in p for p in found)
    assert "pipeline-install-config key postgresExtraParams is read by nothing" in found
    assert "ML Metadata would still run its own in-cluster database" in found
    assert rds_forces_tls()  # the database module does force TLS: the first finding is real
