"""The lab is real: terraform + the AWS provider against moto, an OCI registry, a control plane with kwok."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from deployctl.cli.main import main
from deployctl.config import load
from deployctl.sandbox import image_push, images
from deployctl.sandbox.lab import Lab
from deployctl.sandbox.ports import port_open
from deployctl.sandbox.procfs import processes_in_groups, rss_bytes
from deployctl.sandbox.tools import Tools
from tests.lab.conftest import RunInLab

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]

MAIN_TF = """
terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "5.100.0" }
  }
}

variable "endpoint" { type = string }

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  s3_use_path_style           = true
  endpoints {
    s3  = var.endpoint
    ecr = var.endpoint
    sts = var.endpoint
    iam = var.endpoint
  }
}

resource "aws_s3_bucket" "state" {
  bucket = "lab-terraform-state"
}

resource "aws_ecr_repository" "api" {
  name                 = "api"
  image_tag_mutability = "IMMUTABLE"
}

output "repository_url" { value = aws_ecr_repository.api.repository_url }
"""


def test_terraform_applies_s3_and_ecr_into_moto(
    aws_reset: str, kube_run: RunInLab, tmp_path: Path, lab_env: dict[str, str]
) -> None:
    (tmp_path / "main.tf").write_text(MAIN_TF)
    var = f"-var=endpoint={aws_reset}"
    kube_run(["terraform", "init", "-input=false", "-no-color"], cwd=tmp_path, timeout=300)
    kube_run(["terraform", "apply", "-input=false", "-no-color", "-auto-approve", var], cwd=tmp_path, timeout=300)
    again = kube_run(
        ["terraform", "plan", "-input=false", "-no-color", "-detailed-exitcode", var], cwd=tmp_path, ok_codes=(0, 1, 2)
    )
    assert again.exit_code == 0, again.stdout + again.stderr

    import boto3

    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    buckets = [b["Name"] for b in session.client("s3", endpoint_url=aws_reset).list_buckets()["Buckets"]]
    repos = session.client("ecr", endpoint_url=aws_reset).describe_repositories()["repositories"]
    assert buckets == ["lab-terraform-state"]
    assert [(r["repositoryName"], r["imageTagMutability"]) for r in repos] == [("api", "IMMUTABLE")]
    assert lab_env["TF_CLI_CONFIG_FILE"].endswith("terraformrc")


def test_registry_serves_pushed_image_by_tag_and_digest(registry: str, registry2: str) -> None:
    pushed = image_push.push_image(registry, "lab/single", "v1", layer_size=2048)

    by_tag, media_type, tag_digest = image_push.get_manifest(registry, "lab/single", "v1")
    by_digest, _, digest = image_push.get_manifest(registry, "lab/single", pushed.digest)

    assert by_tag == by_digest == pushed.manifest
    assert tag_digest == digest == pushed.digest == images.digest_of(by_tag)
    assert media_type == images.OCI_MANIFEST
    assert image_push.list_tags(registry2, "lab/single") == []  # the second registry is independent


def test_retag_by_manifest_put_keeps_digest_of_multi_platform_index(registry: str) -> None:
    pushed = image_push.push_image(registry, "lab/multi", "main-abc123", multi_platform=True, attestation=True)
    assert set(pushed.platforms) == {"linux/amd64", "linux/arm64"}
    assert len(pushed.attestations) == 2

    new_digest = image_push.retag(registry, "lab/multi", "main-abc123", "release-1.0.0")

    data, media_type, digest = image_push.get_manifest(registry, "lab/multi", "release-1.0.0")
    assert new_digest == digest == pushed.digest
    assert data == pushed.manifest
    assert media_type == images.OCI_INDEX
    assert sorted(image_push.list_tags(registry, "lab/multi")) == ["main-abc123", "release-1.0.0"]
    for child in (*pushed.platforms.values(), *pushed.attestations):
        assert image_push.get_manifest(registry, "lab/multi", child)[2] == child


def _chart(directory: Path, image: str, replicas: int) -> Path:
    chart = directory / "hello"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: hello\nversion: 0.1.0\nappVersion: '1'\n")
    (chart / "values.yaml").write_text(f"image: {image}\nreplicas: {replicas}\n")
    (chart / "templates" / "deployment.yaml").write_text(
        """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      containers:
        - name: app
          image: {{ .Values.image }}
          ports: [{containerPort: 8080}]
"""
    )
    return chart


def _json(result: Any) -> Any:
    return json.loads(result.stdout)


@pytest.mark.parametrize("helm", ["helm", "helm3"])
def test_helm_installs_chart_and_deployment_becomes_ready(
    helm: str, kube_run: RunInLab, registry: str, tmp_path: Path
) -> None:
    pushed = image_push.push_image(registry, "lab/hello", "v1")
    namespace = f"lab-{helm}"
    chart = _chart(tmp_path, f"{registry}/lab/hello@{pushed.digest}", replicas=3)

    kube_run(
        [
            helm,
            "upgrade",
            "--install",
            "hello",
            str(chart),
            "--namespace",
            namespace,
            "--create-namespace",
            "--wait",
            "--timeout",
            "120s",
        ],
        timeout=180,
    )

    deployment = _json(kube_run(["kubectl", "-n", namespace, "get", "deployment", "hello", "-o", "json"]))
    assert deployment["status"].get("readyReplicas") == 3
    pods = _json(kube_run(["kubectl", "-n", namespace, "get", "pods", "-o", "json"]))["items"]
    assert len(pods) == 3
    assert {p["status"]["phase"] for p in pods} == {"Running"}
    status = _json(kube_run([helm, "status", "hello", "-n", namespace, "-o", "json"]))
    assert status["info"]["status"] == "deployed"


def _wait_for_pods(
    kube_run: RunInLab, namespace: str, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 60
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    pods: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        pods = _json(kube_run(["kubectl", "-n", namespace, "get", "pods", "-o", "json"]))["items"]
        if pods and done(pods):
            return pods
        time.sleep(0.5)
    raise AssertionError(f"pods in {namespace} did not reach the expected state: {json.dumps(pods)[:2000]}")


def _waiting(pod: dict[str, Any]) -> list[tuple[str | None, int]]:
    return [
        (c.get("state", {}).get("waiting", {}).get("reason"), int(c.get("restartCount", 0)))
        for c in pod["status"].get("containerStatuses", [])
    ]


def test_crash_marked_image_ends_in_crashloopbackoff(kube_run: RunInLab, registry: str) -> None:
    kube_run(["kubectl", "create", "namespace", "lab-crash"])
    kube_run(
        [
            "kubectl",
            "-n",
            "lab-crash",
            "create",
            "deployment",
            "crash",
            f"--image={registry}/crashloop:1",
            "--replicas=2",
        ]
    )

    pods = _wait_for_pods(
        kube_run,
        "lab-crash",
        lambda pods: len(pods) == 2
        and all(w and w[0][0] == "CrashLoopBackOff" and w[0][1] > 0 for w in map(_waiting, pods)),
    )

    assert all(not any(c["ready"] for c in p["status"]["containerStatuses"]) for p in pods)
    deployment = _json(kube_run(["kubectl", "-n", "lab-crash", "get", "deployment", "crash", "-o", "json"]))
    assert not deployment["status"].get("readyReplicas")


def test_image_marked_crashing_by_digest_crashes_when_pinned(lab: Lab, kube_run: RunInLab, registry: str) -> None:
    """The sandbox's 'this build crashes': a digest-pinned pod of a marked image goes CrashLoopBackOff,
    while an unmarked image of the same repository becomes Ready."""
    broken = image_push.push_image(registry, "marked", tag="broken", layer_size=512, seed=101)
    healthy = image_push.push_image(registry, "marked", tag="healthy", layer_size=512, seed=102)
    lab.mark_image(broken.digest, "crashloop")
    kube_run(["kubectl", "create", "namespace", "lab-marked"])
    for name, image in (("broken", broken), ("healthy", healthy)):
        kube_run(
            ["kubectl", "-n", "lab-marked", "create", "deployment", name, f"--image={registry}/marked@{image.digest}"]
        )

    def settled(pods: list[dict[str, Any]]) -> bool:
        by_app = {p["metadata"]["labels"]["app"]: p for p in pods}
        if set(by_app) != {"broken", "healthy"}:
            return False
        crashed = _waiting(by_app["broken"])
        ready = any(
            c["type"] == "Ready" and c["status"] == "True" for c in by_app["healthy"]["status"].get("conditions", [])
        )
        return bool(crashed) and crashed[0][0] == "CrashLoopBackOff" and ready

    started = time.monotonic()
    _wait_for_pods(kube_run, "lab-marked", settled)
    # kwok's restart must not stall pods until the old process's node leases expire (40 s)
    assert time.monotonic() - started < 20


def test_missing_image_ends_in_image_pull_backoff(kube_run: RunInLab, registry: str) -> None:
    kube_run(["kubectl", "create", "namespace", "lab-pull"])
    kube_run(["kubectl", "-n", "lab-pull", "create", "deployment", "pull", f"--image={registry}/does-not-exist:1"])

    pods = _wait_for_pods(
        kube_run, "lab-pull", lambda pods: all(w and w[0][0] == "ImagePullBackOff" for w in map(_waiting, pods))
    )

    assert pods[0]["status"]["phase"] == "Pending"


def test_fake_nodes_are_ready_in_three_zones(kube_run: RunInLab) -> None:
    nodes = _json(kube_run(["kubectl", "get", "nodes", "-o", "json"]))["items"]

    ready = {
        n["metadata"]["name"]: n["metadata"]["labels"]["topology.kubernetes.io/zone"]
        for n in nodes
        if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
    }
    assert sorted(ready.values()) == ["us-east-1a", "us-east-1b", "us-east-1c"]
    table = kube_run(["kubectl", "get", "nodes"]).stdout
    assert table.count(" Ready ") == 3
    version = _json(kube_run(["kubectl", "version", "-o", "json"]))
    assert version["serverVersion"]["gitVersion"] == "v1.33.13"


def test_config_overrides_point_every_environment_at_the_lab(lab: Lab) -> None:
    base = load(REPO / "pyproject.toml")

    config = load(REPO / "pyproject.toml", lab.config_overrides(base.settings)).settings

    for name, env in config.environments.items():
        assert env.aws.endpoint_url == lab.moto_url
        assert env.aws.role_arn is None
        if env.cluster is not None:
            assert env.cluster.kubeconfig == lab.kubeconfig
            assert env.cluster.eks is None
            assert env.cluster.context == lab.context
            assert env.namespace == f"{name}-{base.settings.environments[name].namespace}"
    assert {app.image.registry for app in config.apps.values()} == {lab.registry_hosts[0]}


def test_separate_lab_stops_without_leftovers(lab_tools: Tools, tmp_path: Path) -> None:
    other = Lab(state_dir=tmp_path / "lab", tools=lab_tools, registries=1)
    started = time.monotonic()
    other.start()
    elapsed = time.monotonic() - started
    groups = [s.pid for s in other.services.values()]
    ports = [p for s in other.services.values() for p in s.ports]
    rss = rss_bytes(other)
    assert all(other.status().values())
    print(f"separate lab: started in {elapsed:.1f}s, RSS {rss / 2**20:.0f} MiB, {len(groups)} services")

    other.stop()

    assert processes_in_groups(groups) == []
    assert [p for p in ports if port_open(p)] == []
    assert other.services == {}


@pytest.mark.usefixtures("lab_tools")
def test_sandbox_command_up_env_status_down(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        "[tool.deployctl.environments.dev]\n"
        'aws = { region = "us-east-1", role_arn = "arn:aws:iam::123456789012:role/x" }\n'
        'terraform = { root = "tf", backend = { bucket = "tfstate", key = "dev.tfstate", region = "us-east-1" } }\n'
    )
    monkeypatch.chdir(project)
    monkeypatch.delenv("DEPLOYCTL_SANDBOX", raising=False)
    monkeypatch.delenv("DEPLOYCTL_CONFIG", raising=False)

    assert main(["sandbox", "up", "--only", "moto", "--only", "registry"]) == 0
    capsys.readouterr()
    assert main(["--output", "json", "sandbox", "status"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["healthy"] is True
    assert {c["name"] for c in status["components"]} == {
        "moto",
        "registry-0",
        "registry-1",
        "registry-0-backend",
        "registry-1-backend",
    }
    assert status["registries"] == [
        c["endpoint"] for c in status["components"] if c["name"] in ("registry-0", "registry-1")
    ]
    assert main(["sandbox", "env"]) == 0
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("export ")
    )
    state = project / ".deployctl" / "sandbox" / "state.json"
    assert exports["DEPLOYCTL_SANDBOX"] == str(state)
    assert exports["AWS_ENDPOINT_URL"] == status["moto_url"]
    assert "***" not in "".join(exports.values())

    monkeypatch.setenv("DEPLOYCTL_SANDBOX", str(state))
    assert main(["--output", "json", "config", "show", "dev"]) == 0
    assert status["moto_url"] in capsys.readouterr().out

    pids = [c["pid"] for c in status["components"]]
    monkeypatch.delenv("DEPLOYCTL_SANDBOX")
    assert main(["sandbox", "down"]) == 0
    assert processes_in_groups(pids) == []
    assert not state.parent.exists()
