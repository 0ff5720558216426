"""The first hour in one's own repository (issue 17), with real processes: a sandbox started in one
repository is found from another one and from a directory with no configuration (by the commands that only read
it, which say so); the second repository's state bucket is created in it on first use; a new terraform root's
first plan applies (init's lock file is part of the fingerprint) and a changed file is named; `sandbox mark` makes
a digest crash; `bootstrap` creates a state bucket idempotently; `sandbox restart` keeps a component's ports and
data; `mark`, `restart` and `down` never act on a sandbox they would have to guess (issue 24); once the sandbox is
down, `sandbox env` makes later commands refuse."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from deployctl.sandbox import image_push, tools
from deployctl.sandbox.procfs import processes_in_groups

pytestmark = pytest.mark.lab

ROOT_TF = """terraform {
  backend "s3" {}
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

provider "aws" {
  region                      = "us-east-1"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
}

resource "terraform_data" "marker" {
  input = "v1"
}
"""


def _config(bucket: str, *, root: str = "infra", region: str = "us-east-1", endpoint: str | None = None) -> str:
    aws = f'{{ region = "us-east-1"{f", endpoint_url = {json.dumps(endpoint)}" if endpoint else ""} }}'
    backend = f'{{ bucket = "{bucket}", key = "dev/terraform.tfstate", region = "{region}" }}'
    return f'[tool.deployctl.environments.dev]\naws = {aws}\nterraform = {{ root = "{root}", backend = {backend} }}\n'


@dataclass
class World:
    started_in: Path  # repository A: where `sandbox up` ran
    second: Path  # repository B: the user's own, never started a sandbox
    nowhere: Path  # no configuration here or above
    env: dict[str, str]  # the user's shell: no sandbox variables, a private XDG_STATE_HOME

    def run(self, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "deployctl", *args],
            cwd=cwd,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    @property
    def state(self) -> Path:
        return self.started_in / ".deployctl" / "sandbox" / "state.json"

    def exports(self, cwd: Path) -> dict[str, str]:
        """What `eval "$(deployctl sandbox env)"` leaves in the shell, run in ``cwd``."""
        done = self.run("sandbox", "env", cwd=cwd)
        assert done.returncode == 0, done.stderr
        shell = {k: v for k, v in self.env.items() if not k.startswith("AWS_")}
        for line in done.stdout.splitlines():
            if line.startswith("export "):
                key, _, value = line.removeprefix("export ").partition("=")
                shell[key] = value.strip("'")
        return shell


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tools.ensure(progress=lambda _line: None)
    if shutil.which("git") is None:
        pytest.skip("needs git")
    base = tmp_path_factory.mktemp("first-hour")
    started_in, second, nowhere = base / "platform-repo", base / "my-service", base / "nowhere"
    for directory in (started_in, second / "infra", nowhere):
        directory.mkdir(parents=True)
    (started_in / "pyproject.toml").write_text(_config("platform-tfstate"))
    (second / "pyproject.toml").write_text(_config("team-tfstate"))
    (second / "infra" / "main.tf").write_text(ROOT_TF)
    (second / ".gitignore").write_text(".deployctl/\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEPLOYCTL_", "AWS_", "TF_"))}
    env.update(
        XDG_STATE_HOME=str(base / "user-state"),
        NO_COLOR="1",
        GIT_AUTHOR_NAME="dev",
        GIT_AUTHOR_EMAIL="dev@example.com",
        GIT_COMMITTER_NAME="dev",
        GIT_COMMITTER_EMAIL="dev@example.com",
    )
    _git(second, "init", "-q", "-b", "main")
    _git(second, "add", ".")
    _git(second, "-c", "user.name=dev", "-c", "user.email=dev@example.com", "commit", "-q", "-m", "infra")
    made = World(started_in, second, nowhere, env)
    up = made.run("sandbox", "up", cwd=started_in)
    assert up.returncode == 0, up.stderr
    try:
        yield made
    finally:
        made.run("sandbox", "down", "--sandbox", str(started_in), cwd=nowhere)


def _s3(moto_url: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _status(world: World, cwd: Path) -> dict[str, Any]:
    done = world.run("sandbox", "status", "-o", "json", cwd=cwd)
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def test_the_sandbox_is_found_from_another_repository_and_from_anywhere(world: World) -> None:
    for cwd in (world.second, world.nowhere):
        status = _status(world, cwd)
        assert status["healthy"] is True
        assert status["state_file"] == str(world.state.resolve())
        assert world.exports(cwd)["DEPLOYCTL_SANDBOX"] == str(world.state.resolve())
        said = world.run("sandbox", "status", cwd=cwd).stderr
        assert f"sandbox: using the one you started last, in {world.state.resolve().parent}" in said, "it says which"
    explicit = world.run("sandbox", "status", "--sandbox", str(world.started_in), cwd=world.nowhere)
    assert explicit.returncode == 0 and "sandbox: healthy" in explicit.stdout


def test_the_second_repositorys_state_bucket_is_created_on_first_use(world: World) -> None:
    s3 = _s3(_status(world, world.nowhere)["moto_url"])
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert "platform-tfstate" in names, "the bucket of the repository it was started in, at up"
    world.exports(world.second)  # `sandbox env` in the second repository
    assert s3.get_bucket_versioning(Bucket="team-tfstate")["Status"] == "Enabled"
    assert s3.get_object_lock_configuration(Bucket="team-tfstate")["ObjectLockConfiguration"]["ObjectLockEnabled"] == (
        "Enabled"
    ), "its ledger under Object Lock, as bootstrap does"
    rules = s3.get_bucket_encryption(Bucket="team-tfstate")["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert all(s3.get_public_access_block(Bucket="team-tfstate")["PublicAccessBlockConfiguration"].values())


def test_a_new_roots_first_plan_applies_and_a_changed_file_is_named(world: World) -> None:
    shell = world.exports(world.second)
    lock = world.second / "infra" / ".terraform.lock.hcl"
    assert not lock.exists()
    planned = world.run("plan", "dev", cwd=world.second, env=shell)
    assert planned.returncode == 0, planned.stderr
    assert lock.is_file(), "init wrote the dependency lock file after deployctl prepared the plan"
    applied = world.run("apply", "dev", cwd=world.second, env=shell)
    assert applied.returncode == 0, applied.stderr
    assert "dev: applied saved plan" in applied.stdout

    (world.second / "infra" / "main.tf").write_text(ROOT_TF.replace('"v1"', '"v2"'))
    assert world.run("plan", "dev", cwd=world.second, env=shell).returncode == 0
    (world.second / "infra" / "main.tf").write_text(ROOT_TF.replace('"v1"', '"v3"'))
    refused = world.run("apply", "dev", cwd=world.second, env=shell)
    assert refused.returncode == 4, refused.stderr
    assert "the configuration or terraform files changed since it was made: infra/main.tf changed" in refused.stderr


def test_sandbox_mark_makes_a_digest_crash(world: World) -> None:
    status = _status(world, world.nowhere)
    registry = status["registries"][0]
    pushed = image_push.push_image(registry, "first-hour", tag="broken", layer_size=256, seed=17)
    guessed = world.run("sandbox", "mark", pushed.digest, "crashloop", cwd=world.nowhere)
    assert guessed.returncode == 2, "the one started last is never changed on a guess"
    assert f"pass --sandbox {world.state.resolve().parent}" in guessed.stderr
    assert pushed.digest not in json.loads(world.state.read_text())["markers"]["crashloop"]
    marked = world.run("sandbox", "mark", pushed.digest, "crashloop", "--sandbox", str(world.started_in),
                       cwd=world.nowhere)  # fmt: skip
    assert marked.returncode == 0, marked.stderr
    assert pushed.digest in marked.stdout
    assert pushed.digest in json.loads(world.state.read_text())["markers"]["crashloop"]
    shell = world.exports(world.nowhere)
    kubectl = [shutil.which("kubectl", path=shell["PATH"]) or "kubectl"]

    def kube(*args: str) -> str:
        done = subprocess.run([*kubectl, *args], env=shell, capture_output=True, text=True, timeout=60, check=True)
        return done.stdout

    kube("create", "namespace", "first-hour")
    kube("-n", "first-hour", "create", "deployment", "broken", f"--image={registry}/first-hour@{pushed.digest}")
    deadline = time.monotonic() + 60
    reasons: list[str] = []
    while time.monotonic() < deadline:
        pods = json.loads(kube("-n", "first-hour", "get", "pods", "-o", "json"))["items"]
        reasons = [
            c.get("state", {}).get("waiting", {}).get("reason", "")
            for p in pods
            for c in p.get("status", {}).get("containerStatuses", [])
        ]
        if "CrashLoopBackOff" in reasons:
            break
        time.sleep(0.5)
    assert "CrashLoopBackOff" in reasons


# The registry (its blobs), the API server (the objects it serves from etcd) and kwok (the nodes again).
RESTARTED = ("registry-0-backend", "kube-apiserver", "kwok")


def test_sandbox_restart_keeps_each_components_ports_and_data(world: World) -> None:
    before = {c["name"]: c for c in _status(world, world.nowhere)["components"]}
    registry = _status(world, world.nowhere)["registries"][0]
    pushed = image_push.push_image(registry, "restarted", tag="kept", layer_size=512, seed=23)
    shell = world.exports(world.nowhere)
    kubectl = [shutil.which("kubectl", path=shell["PATH"]) or "kubectl"]
    subprocess.run([*kubectl, "create", "namespace", "kept"], env=shell, check=True, capture_output=True, timeout=60)

    for name in RESTARTED:  # the sandbox `eval "$(deployctl sandbox env)"` chose for this shell
        done = world.run("sandbox", "restart", name, cwd=world.nowhere, env=shell)
        assert done.returncode == 0, f"{name}: {done.stderr}"
        assert f"sandbox: {name} restarted" in done.stdout
    after = {c["name"]: c for c in _status(world, world.nowhere)["components"]}
    for name in RESTARTED:
        assert after[name]["endpoint"] == before[name]["endpoint"], f"{name} moved: its clients would lose it"
        assert after[name]["pid"] != before[name]["pid"], f"{name} was not restarted"
        assert after[name]["healthy"], name
    assert processes_in_groups([before[name]["pid"] for name in RESTARTED]) == [], "the old processes are gone"

    # The data outlived the restarts: the registry's blobs, etcd's objects; kwok manages the nodes again.
    request = urllib.request.Request(f"http://{registry}/v2/restarted/manifests/{pushed.digest}", method="HEAD")
    request.add_header("Accept", "application/vnd.oci.image.manifest.v1+json")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (http: the lab registry)
        assert response.status == 200
    got = subprocess.run([*kubectl, "get", "namespace", "kept", "-o", "name"], env=shell, capture_output=True,
                         text=True, timeout=60, check=False)  # fmt: skip
    assert got.stdout.strip() == "namespace/kept", got.stderr
    nodes = json.loads(subprocess.run([*kubectl, "get", "nodes", "-o", "json"], env=shell, capture_output=True,
                                      text=True, timeout=60, check=True).stdout)["items"]  # fmt: skip
    ready = [n for n in nodes for c in n["status"]["conditions"] if c["type"] == "Ready" and c["status"] == "True"]
    assert len(ready) == len(nodes) > 0

    unknown = world.run("sandbox", "restart", "nginx", cwd=world.nowhere, env=shell)
    assert unknown.returncode == 2
    assert "the sandbox has no component 'nginx'" in unknown.stderr


def test_bootstrap_creates_a_versioned_encrypted_state_bucket_once(world: World) -> None:
    """The real-AWS route (no sandbox overlay: the environment's own endpoint and credentials)."""
    moto_url = _status(world, world.nowhere)["moto_url"]
    repo = world.nowhere / "fresh-account"
    repo.mkdir()
    (repo / "pyproject.toml").write_text(_config("fresh-tfstate", region="eu-west-1", endpoint=moto_url))
    env = {**world.env, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    first = world.run("bootstrap", "dev", "-o", "json", cwd=repo, env=env)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["changed"] == [
        "created",  # with Object Lock, so versioned from the start
        "default encryption set (SSE-S3)",
        "public access blocked",
        "object lock enabled (COMPLIANCE, 90 days default retention)",
    ]
    again = world.run("bootstrap", "dev", cwd=repo, env=env)
    assert again.returncode == 0, again.stderr
    assert "dev: state bucket s3://fresh-tfstate (eu-west-1): nothing to do" in again.stdout
    s3 = _s3(moto_url)
    assert s3.get_bucket_location(Bucket="fresh-tfstate")["LocationConstraint"] == "eu-west-1"
    assert s3.get_bucket_versioning(Bucket="fresh-tfstate")["Status"] == "Enabled"
    rule = s3.get_object_lock_configuration(Bucket="fresh-tfstate")["ObjectLockConfiguration"]["Rule"]
    assert (rule["DefaultRetention"]["Mode"], rule["DefaultRetention"]["Days"]) == ("COMPLIANCE", 90)


def test_once_the_sandbox_is_down_nothing_falls_through_to_aws(world: World) -> None:
    pids = [c["pid"] for c in _status(world, world.nowhere)["components"]]
    for cwd in (world.second, world.nowhere):  # another repository's sandbox is never stopped on a guess
        refused = world.run("sandbox", "down", cwd=cwd)
        assert refused.returncode == 2
        assert f"the one you started last is in {world.state.resolve().parent}" in refused.stderr
        assert f"pass --sandbox {world.state.resolve().parent}" in refused.stderr
        assert _status(world, world.nowhere)["healthy"] is True
    down = world.run("sandbox", "down", "--sandbox", str(world.state.resolve().parent), cwd=world.nowhere)
    assert down.returncode == 0, down.stderr
    assert not world.state.exists()
    assert not (Path(world.env["XDG_STATE_HOME"]) / "deployctl" / "sandbox").exists()
    assert processes_in_groups(pids) == [], "every service stopped"

    refused = world.run("sandbox", "env", cwd=world.second)
    assert refused.returncode == 2
    assert "the sandbox is not running" in refused.stderr
    shell = dict(world.env)
    for line in refused.stdout.splitlines():  # what the eval sets
        key, _, value = line.removeprefix("export ").partition("=")
        shell[key] = value.strip("'")
    assert "DEPLOYCTL_SANDBOX" in shell
    doctor = world.run("doctor", cwd=world.second, env=shell)
    assert doctor.returncode == 2
    assert "which does not exist (the sandbox is down)" in doctor.stderr
    assert "amazonaws.com" not in doctor.stdout + doctor.stderr
