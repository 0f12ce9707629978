"""The Helm chart, rendered by Helm itself and checked without a cluster.

Every rendered manifest is validated against the Kubernetes 1.35 schemas (strict: no
unknown fields), and what the chart promises is read back from the output: the Docker
socket and volumes at their host paths, probes and scrape annotations on the API's port,
secrets only as references, and a controller command line and configuration that
Lifeboat itself accepts. The init container's script is run for real on a temporary
directory.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import kubernetes_validate
import pytest
import yaml

from controller.cli.main import cli
from controller.resources.config import Config
from controller.resources.loader import load_paths
from tests.support.required import skip_or_fail

ROOT = Path(__file__).parents[3]
CHART = ROOT / "charts" / "lifeboat"
GITOPS = ROOT / "examples" / "gitops"
KUBERNETES = "1.35"

Manifest = dict[str, Any]


@pytest.fixture(scope="module")
def helm() -> str:
    found = Path(sys.executable).with_name("helm")
    if found.exists():
        return str(found)
    on_path = shutil.which("helm")
    if on_path is None:
        skip_or_fail("helm", "no helm binary (make test fetches one: scripts/fetch_helm.py)")
    assert on_path is not None
    return on_path


def render(helm: str, tmp_path: Path, values: dict[str, Any] | None = None) -> list[Manifest]:
    command = [helm, "template", "backups", str(CHART), "--namespace", "lifeboat"]
    if values is not None:
        values_file = tmp_path / "values.yaml"
        values_file.write_text(yaml.safe_dump(values))
        command += ["--values", str(values_file)]
    rendered = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return [document for document in yaml.safe_load_all(rendered) if document]


def refused(helm: str, tmp_path: Path, values: dict[str, Any]) -> str:
    values_file = tmp_path / "bad-values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    command = [helm, "template", "backups", str(CHART), "--values", str(values_file)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode != 0, result.stdout
    return result.stderr


def by_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def controller_of(manifests: list[Manifest]) -> tuple[Manifest, Manifest]:
    (daemonset,) = by_kind(manifests, "DaemonSet")
    pod = daemonset["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "controller"]
    return pod, container


def env_of(container: Manifest) -> dict[str, Manifest]:
    return {entry["name"]: entry for entry in container["env"]}


def mounts_of(pod: Manifest, container: Manifest) -> dict[str, tuple[str, Manifest]]:
    """mount path -> (volume name, volume source) for one container."""
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    return {mount["mountPath"]: (mount["name"], volumes[mount["name"]]) for mount in container["volumeMounts"]}


def assert_valid_kubernetes(manifests: list[Manifest]) -> None:
    for manifest in manifests:
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)


def assert_accepted_by_lifeboat(manifests: list[Manifest]) -> None:
    """The container's arguments parse with the real CLI; config.yaml loads as Lifeboat's Config."""
    _, container = controller_of(manifests)
    command_name, *arguments = container["args"]
    command = cli.get_command(click.Context(cli), command_name)
    assert command is not None
    command.make_context(command_name, list(arguments))
    (config_map,) = [m for m in by_kind(manifests, "ConfigMap") if m["metadata"]["name"].endswith("-config")]
    Config.model_validate(yaml.safe_load(config_map["data"]["config.yaml"]))


def test_lint_is_clean_and_bad_values_are_refused_with_the_field_named(helm: str, tmp_path: Path) -> None:
    lint = subprocess.run([helm, "lint", "--strict", str(CHART)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "controller/logFormat" in refused(helm, tmp_path, {"controller": {"logFormat": "xml"}})
    assert "catalogue" in refused(helm, tmp_path, {"catalogue": {"type": "sqlite"}})
    assert "/docker/socket" in refused(helm, tmp_path, {"docker": {"socket": "docker.sock"}})
    postgres_without_url = refused(helm, tmp_path, {"catalog": {"type": "postgresql"}})
    assert "catalog.postgresql.urlSecret.name" in postgres_without_url
    git_without_repository = refused(helm, tmp_path, {"resourceFiles": {"source": "git"}})
    assert "resourceFiles.git.repository" in git_without_repository


def test_default_values_run_the_controller_on_the_nodes_docker(helm: str, tmp_path: Path) -> None:
    manifests = render(helm, tmp_path)
    assert sorted(m["kind"] for m in manifests) == ["ConfigMap", "ConfigMap", "DaemonSet", "Service"]
    assert_valid_kubernetes(manifests)
    assert_accepted_by_lifeboat(manifests)
    pod, container = controller_of(manifests)
    mounts = mounts_of(pod, container)

    # Docker's socket and its volumes at the same paths as on the node (Docker reports host paths).
    assert mounts["/var/run/docker.sock"][1]["hostPath"] == {"path": "/var/run/docker.sock", "type": "Socket"}
    assert mounts["/var/lib/docker/volumes"][1]["hostPath"]["path"] == "/var/lib/docker/volumes"
    # The catalog and the resources on the node; the node's name is the host's name.
    env = env_of(container)
    assert mounts["/var/lib/lifeboat"][1]["hostPath"]["type"] == "DirectoryOrCreate"
    assert env["LIFEBOAT_CATALOG"]["value"] == "sqlite:////var/lib/lifeboat/catalog.db"
    assert env["LIFEBOAT_RESOURCES"]["value"] == "/var/lib/lifeboat/resources"
    assert env["LIFEBOAT_HOSTNAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert env["DOCKER_HOST"]["value"] == "unix:///var/run/docker.sock"

    # The API: listening on the port the probes, the Service and the scrape annotations use.
    (port,) = container["ports"]
    assert env["LIFEBOAT_API_LISTEN"]["value"] == f"0.0.0.0:{port['containerPort']}"
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    (service,) = by_kind(manifests, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    assert service["spec"]["selector"].items() <= pod_labels(manifests).items()
    annotations = by_kind(manifests, "DaemonSet")[0]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port["containerPort"])
    assert annotations["prometheus.io/path"] == "/metrics"

    # Root's file capabilities only, nothing else.
    security = container["securityContext"]
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert mounts["/tmp"][1]["emptyDir"] == {}


def pod_labels(manifests: list[Manifest]) -> dict[str, str]:
    labels: dict[str, str] = by_kind(manifests, "DaemonSet")[0]["spec"]["template"]["metadata"]["labels"]
    return labels


def gitops_files() -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(GITOPS.glob("*/*.yaml"))}


NON_DEFAULT: dict[str, Any] = {
    "image": {"repository": "registry.example/lifeboat", "tag": "0.1.0-rc1", "pullPolicy": "Always"},
    "hostPaths": [{"path": "/srv/apps"}, {"path": "/etc/platform", "readOnly": True}],
    "catalog": {"type": "postgresql", "postgresql": {"urlSecret": {"name": "lifeboat-catalog", "key": "url"}}},
    "resourceFiles": {"source": "configMap", "configMap": {"files": gitops_files()}},
    "secretEnv": [
        {"name": "LIFEBOAT_OFFSITE_PASSPHRASE", "secret": "lifeboat-offsite", "key": "passphrase"},
        {"name": "LIFEBOAT_S3_ACCESS_KEY_ID", "secret": "lifeboat-offsite", "key": "access-key-id"},
        {"name": "LIFEBOAT_S3_SECRET_ACCESS_KEY", "secret": "lifeboat-offsite", "key": "secret-access-key"},
    ],
    "secretEnvFrom": ["app-database-passwords"],
    "controller": {"resyncSeconds": 30, "logFormat": "text", "maxConcurrentBackups": 4, "transfers": 16},
    "api": {
        "port": 9090,
        "keysSecret": "lifeboat-api-keys",
        "service": {"type": "LoadBalancer", "port": 443, "internalTrafficPolicy": "Local"},
    },
    "metrics": {"scrapeAnnotations": False},
    "nodeSelector": {"lifeboat.io/docker": "true"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "apps", "effect": "NoSchedule"}],
}


def test_non_default_values_postgres_catalog_secrets_and_the_gitops_files(helm: str, tmp_path: Path) -> None:
    manifests = render(helm, tmp_path, NON_DEFAULT)
    assert_valid_kubernetes(manifests)
    assert_accepted_by_lifeboat(manifests)
    pod, container = controller_of(manifests)
    env = env_of(container)
    assert container["image"] == "registry.example/lifeboat:0.1.0-rc1"
    assert container["args"] == ["controller", "--resync-seconds=30", "--log-format=text"]
    assert env["LIFEBOAT_API_LISTEN"]["value"] == "0.0.0.0:9090"

    # Secrets are references only: no value of any secret is in the output.
    assert env["LIFEBOAT_CATALOG"]["valueFrom"] == {"secretKeyRef": {"name": "lifeboat-catalog", "key": "url"}}
    for variable in ("LIFEBOAT_OFFSITE_PASSPHRASE", "LIFEBOAT_S3_ACCESS_KEY_ID", "LIFEBOAT_S3_SECRET_ACCESS_KEY"):
        assert "value" not in env[variable] and env[variable]["valueFrom"]["secretKeyRef"]["name"] == "lifeboat-offsite"
    assert container["envFrom"] == [{"secretRef": {"name": "app-database-passwords"}}]
    assert not by_kind(manifests, "Secret")

    # API keys from their Secret, named in the configuration; the configuration's limits.
    mounts = mounts_of(pod, container)
    assert mounts["/etc/lifeboat/api-keys"][1]["secret"]["secretName"] == "lifeboat-api-keys"
    (config_map,) = [m for m in by_kind(manifests, "ConfigMap") if m["metadata"]["name"].endswith("-config")]
    config = Config.model_validate(yaml.safe_load(config_map["data"]["config.yaml"]))
    assert config.api.keys_file == "/etc/lifeboat/api-keys/api-keys.yaml"
    assert config.limits.max_concurrent_backups == 4 and config.limits.transfers == 16

    # Extra host paths at the same place, read-only where asked.
    assert mounts["/srv/apps"][1]["hostPath"]["path"] == "/srv/apps"
    read_only = {m["mountPath"]: m.get("readOnly") for m in container["volumeMounts"]}
    assert read_only["/etc/platform"] is True and read_only["/srv/apps"] is False

    (service,) = by_kind(manifests, "Service")
    assert service["spec"]["type"] == "LoadBalancer" and service["spec"]["internalTrafficPolicy"] == "Local"
    annotations = by_kind(manifests, "DaemonSet")[0]["spec"]["template"]["metadata"]["annotations"]
    assert not any(key.startswith("prometheus.io/") for key in annotations)
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux", "lifeboat.io/docker": "true"}
    assert pod["tolerations"] == NON_DEFAULT["tolerations"]
    assert "git-sync" not in [c["name"] for c in pod["containers"]]


def test_the_init_container_copies_the_chart_files_and_keeps_what_the_api_wrote(helm: str, tmp_path: Path) -> None:
    manifests = render(helm, tmp_path, {**NON_DEFAULT, "dataDirectory": str(tmp_path / "node")})
    (resources_map,) = [m for m in by_kind(manifests, "ConfigMap") if m["metadata"]["name"].endswith("-resources")]
    assert resources_map["data"] == gitops_files()
    # The ConfigMap as Kubernetes mounts it: files are links into a hidden ..data directory.
    mounted = tmp_path / "chart-resources"
    (mounted / "..data").mkdir(parents=True)
    for name, text in resources_map["data"].items():
        (mounted / "..data" / name).write_text(text)
        (mounted / name).symlink_to(f"..data/{name}")
    resources = tmp_path / "node" / "resources"
    (resources / "chart").mkdir(parents=True)
    (resources / "chart" / "removed-from-the-chart.yaml").write_text("left over")
    (resources / "restores").mkdir()
    (resources / "restores" / "api-restore.yaml").write_text("kept")

    pod, _ = controller_of(manifests)
    (init,) = pod["initContainers"]
    script = init["command"][2].replace("/chart-resources", str(mounted))
    subprocess.run(["sh", "-c", script], check=True)
    subprocess.run(["sh", "-c", script], check=True)  # every pod start: the same result

    copied = resources / "chart"
    assert sorted(p.name for p in copied.iterdir()) == sorted(resources_map["data"])
    assert all(not p.is_symlink() for p in copied.iterdir())
    assert (resources / "restores" / "api-restore.yaml").read_text() == "kept"
    loaded = load_paths([copied])
    assert loaded.problems == []
    assert {(r.kind, r.name) for r in loaded.resources} == {
        ("BackupStorage", "offsite"),
        ("BackupPolicy", "wordpress001"),
        ("BackupPolicy", "gitea002"),
    }


def test_git_source_adds_git_sync_and_links_its_checkout(helm: str, tmp_path: Path) -> None:
    values = {
        "dataDirectory": str(tmp_path / "node"),
        "resourceFiles": {
            "source": "git",
            "git": {"repository": "https://git.example/platform/backups.git", "ref": "prod", "path": "hosts/docker01"},
        },
        "api": {"service": {"enabled": False}},
    }
    manifests = render(helm, tmp_path, values)
    assert_valid_kubernetes(manifests)
    assert_accepted_by_lifeboat(manifests)
    assert not by_kind(manifests, "Service")
    assert [m["metadata"]["name"] for m in by_kind(manifests, "ConfigMap")] == ["backups-lifeboat-config"]
    pod, container = controller_of(manifests)
    (sync,) = [c for c in pod["containers"] if c["name"] == "git-sync"]
    assert "--repo=https://git.example/platform/backups.git" in sync["args"]
    assert "--ref=prod" in sync["args"] and "--root=/git" in sync["args"] and "--link=checkout" in sync["args"]
    assert sync["securityContext"]["runAsNonRoot"] is True
    # git-sync and the controller share the checkout volume, hidden inside the resources directory.
    resources = tmp_path / "node" / "resources"
    (sync_mount,) = sync["volumeMounts"]
    assert mounts_of(pod, container)[f"{resources}/.git-sync"][0] == sync_mount["name"]

    # The init script links resources/git to the checkout's subdirectory; the loader reads it.
    resources.mkdir(parents=True)
    worktree = resources / ".git-sync" / ".worktrees" / "0123abc" / "hosts" / "docker01"
    worktree.mkdir(parents=True)
    shutil.copy(GITOPS / "policies" / "gitea002.yaml", worktree)
    (resources / ".git-sync" / "checkout").symlink_to(".worktrees/0123abc")
    (init,) = pod["initContainers"]
    subprocess.run(["sh", "-c", init["command"][2]], check=True)
    subprocess.run(["sh", "-c", init["command"][2]], check=True)
    loaded = load_paths([resources])
    assert loaded.problems == []
    assert [(r.name, r.path.relative_to(resources)) for r in loaded.resources] == [
        ("gitea002", Path("git/gitea002.yaml"))
    ]
