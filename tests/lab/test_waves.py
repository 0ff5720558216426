"""Prod in two clusters, promoted wave by wave (issue 19), end to end in a lab of its own: two control planes
(each its own etcd, kube-apiserver, controllers and kwok nodes), three registries (the apps', prod's, and the
second cluster's own), moto for the ledgers and the lock, real helm and git. The configuration names EKS clusters
and ECR hosts; the sandbox's overrides (``DEPLOYCTL_SANDBOX``) point each cluster at a control plane and each
registry at a lab registry, as ``eval "$(deployctl sandbox env)"`` does.

A release rolls out to both clusters in two waves, its image copied into each registry; then a release whose
image crashes only in wave 1's cluster (marked by digest in that control plane only) stops before wave 2: wave 2
keeps running the first release, untouched, and the error says which cluster runs which digest."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deployctl.cli.main import main
from deployctl.sandbox import image_push, tools
from deployctl.sandbox.lab import Lab

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
ECR_US, ECR_EU = "123456789012.dkr.ecr.us-east-1.amazonaws.com", "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
VALUES = 'api:\n  image:\n    tag: ""\n    digest: ""\n  replicaCount: 2\n  autoscaling:\n    enabled: false\n'


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def fleet_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """moto, three registries and two control planes (the opt-in ``cluster2``); stopped with every process."""
    lab = Lab(state_dir=tmp_path_factory.mktemp("fleet-lab"), tools=tools.ensure(), registries=3)
    lab.start(("moto", "registry", "cluster", "cluster2"), progress=lambda line: print(line, file=sys.stderr))
    try:
        yield lab
    finally:
        lab.stop()


@dataclass
class World:
    repo: Path
    lab: Lab
    prefix: str
    capsys: pytest.CaptureFixture[str]

    def run(self, *args: str) -> tuple[int, Any, str]:
        self.capsys.readouterr()
        code = main(["--config", str(self.repo / "pyproject.toml"), "-o", "json", *args])
        captured = self.capsys.readouterr()
        return code, json.loads(captured.out) if captured.out.strip() else None, captured.err

    def build(self, subject: str, seed: int) -> tuple[str, str]:
        """A commit on main and its image in the apps' registry (registry-0); returns (sha, digest)."""
        git(self.repo, "commit", "-q", "--allow-empty", "-m", subject)
        sha = git(self.repo, "rev-parse", "HEAD")
        return sha, image_push.push_image(self.lab.registry_hosts[0], f"{self.prefix}/api", sha, seed=seed).digest

    def prod_pods(self, cluster: int) -> list[dict[str, Any]]:
        out = subprocess.run(
            ["kubectl", "--kubeconfig", str(self.lab.kubeconfigs[cluster]), "-n", f"prod-{self.prefix}", "get",
             "pods", "-l", "app.kubernetes.io/instance=api", "-o", "json"],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        return list(json.loads(out)["items"])

    def pods(self, cluster: int) -> list[tuple[str, str]]:
        """(digest, waiting reason or phase) of prod's api pods in control plane ``cluster``."""
        found = []
        for pod in self.prod_pods(cluster):
            statuses = pod["status"].get("containerStatuses", [])
            waiting = [s.get("state", {}).get("waiting", {}).get("reason") for s in statuses]
            state = next((w for w in waiting if w), pod["status"].get("phase", ""))
            found.append((pod["spec"]["containers"][0]["image"].partition("@")[2], state))
        return found

    def images(self, cluster: int) -> set[str]:
        """Where prod's api pods in control plane ``cluster`` pull from (registry/repository)."""
        return {pod["spec"]["containers"][0]["image"].partition("@")[0] for pod in self.prod_pods(cluster)}

    def revisions(self, cluster: int) -> list[dict[str, Any]]:
        result = subprocess.run(
            ["helm", "--kubeconfig", str(self.lab.kubeconfigs[cluster]), "-n", f"prod-{self.prefix}", "history", "api", "-o", "json"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        return list(json.loads(result.stdout)) if result.returncode == 0 else []

    def tag_digest(self, registry: int, tag: str) -> str | None:
        try:
            manifest, _, _ = image_push.get_manifest(self.lab.registry_hosts[registry], f"{self.prefix}/api", tag)
        except image_push.RegistryHTTPError:
            return None
        return "sha256:" + hashlib.sha256(manifest).hexdigest()


@pytest.fixture
def world(tmp_path: Path, fleet_lab: Lab, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> World:
    prefix = f"w{uuid.uuid4().hex[:8]}"
    state = tmp_path / "sandbox" / "state.json"
    state.parent.mkdir()
    state.write_text(json.dumps(fleet_lab.state()))
    for key, value in {
        **fleet_lab.env(),
        "DEPLOYCTL_SANDBOX": str(state),  # the sandbox's overrides: clusters, registries, moto
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # moto's documented fake credentials
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "HELM_CONFIG_HOME": str(tmp_path / "helm-config"),
        "HELM_CACHE_HOME": str(tmp_path / "helm-cache"),
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "DEPLOYCTL_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    repo = tmp_path / "repo"
    repo.mkdir()
    bucket = f"{prefix}-tfstate"

    def terraform(env: str) -> str:
        return f'terraform = {{ root = "tf", backend = {{ bucket = "{bucket}", key = "{env}/terraform.tfstate", region = "us-east-1" }} }}'

    (repo / "pyproject.toml").write_text(
        f"""[tool.deployctl.apps.api]
chart = "{ROOT / "charts" / "api"}"
release = "api"
image = {{ registry = "{ECR_US}", repository = "{prefix}/api" }}

[tool.deployctl.environments.dev]
aws = {{ region = "us-east-1" }}
{terraform("dev")}
cluster = {{ eks = "api-dev" }}
namespace = "{prefix}"
values = "values-dev.yaml"

[tool.deployctl.environments.prod]
aws = {{ region = "us-east-1" }}
{terraform("prod")}
namespace = "{prefix}"
values = "values-prod.yaml"
promote_from = "dev"
promote_soak_minutes = 0  # promotes right after dev: no soak, on purpose
image_registry = "{ECR_US}"

[tool.deployctl.environments.prod.clusters.use1]
eks = "api-prod-use1"
wave = 1

[tool.deployctl.environments.prod.clusters.euw1]
eks = "api-prod-euw1"
region = "eu-west-1"
image_registry = "{ECR_EU}"
wave = 2
"""
    )
    (repo / "values-dev.yaml").write_text(VALUES)
    (repo / "values-prod.yaml").write_text(VALUES)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "init")
    return World(repo, fleet_lab, prefix, capsys)


def test_two_clusters_in_two_waves_then_a_crash_in_wave_one_stops_before_wave_two(world: World) -> None:
    first, a = world.build("feat: first release", seed=901)
    code, _, err = world.run("deploy", "dev")
    assert code == 0, err
    git(world.repo, "tag", "-a", "release-1.0.0", "-m", "release-1.0.0", first)

    code, out, err = world.run("promote", "release-1.0.0")
    assert code == 0, err
    assert out["plan"]["clusters"] == [{"cluster": "use1", "wave": 1}, {"cluster": "euw1", "wave": 2}]
    assert world.tag_digest(1, "release-1.0.0") == a, "prod's registry has the release"
    assert world.tag_digest(2, "release-1.0.0") == a, "and euw1's own registry (copied, the same bytes)"
    for cluster in (0, 1):
        assert {d for d, _ in world.pods(cluster)} == {a}, f"control plane {cluster} runs the release"
    use1, euw1 = world.revisions(0)[-1], world.revisions(1)[-1]
    assert use1["updated"] < euw1["updated"], "wave 1 rolled out before wave 2"
    deployed = [s["name"] for s in out["steps"] if s["name"].startswith("deploy")]
    assert deployed == ["deploy api in use1", "deploy api in euw1"]
    hosts = world.lab.registry_hosts
    assert world.images(0) == {f"{hosts[1]}/{world.prefix}/api"}, "use1 pulls from prod's registry"
    assert world.images(1) == {f"{hosts[2]}/{world.prefix}/api"}, "euw1 pulls from its own"

    second, b = world.build("feat: crashes in us-east-1 only", seed=902)
    code, _, err = world.run("deploy", "dev")
    assert code == 0, err
    world.lab.mark_image(b, "crashloop", cluster=0)  # the bytes crash only in wave 1's cluster
    git(world.repo, "tag", "-a", "release-1.1.0", "-m", "release-1.1.0", second)
    code, out, err = world.run("promote", "release-1.1.0")
    assert code == 1, err
    message = out["error"]["message"]
    assert message.startswith("prod: cluster use1 (wave 1) failed; wave 2 not started: rollout of api to prod failed")
    assert "CrashLoopBackOff" in message
    assert f"use1 (wave 1): FAILED: api FAILED ({b} did not roll out; the previous pods serve), runs {a}" in message
    assert f"euw1 (wave 2): not started: api runs {a}" in message
    assert "Roll forward" in out["error"]["hint"] and "later waves were not touched" in out["error"]["hint"]
    clusters = out["error"]["clusters"]
    assert (clusters["use1"]["state"], clusters["euw1"]["state"]) == ("FAILED", "not started")
    assert clusters["euw1"]["runs"] == {"api": a}

    assert len(world.revisions(1)) == 1, "wave 2 untouched: no helm revision"
    assert {d for d, _ in world.pods(1)} == {a}
    use1_pods = world.pods(0)
    assert (a, "Running") in use1_pods, "nothing rolled back: the old pods keep serving in wave 1"
    assert any(d == b and state == "CrashLoopBackOff" for d, state in use1_pods)

    code, shown, _ = world.run("status", "prod")
    assert code == 1
    use1_status, euw1_status = shown["apps"]
    assert (use1_status["cluster"], use1_status["digest"], use1_status["healthy"]) == ("use1", b, False)
    assert (euw1_status["cluster"], euw1_status["wave"], euw1_status["digest"]) == ("euw1", 2, a)
    assert [w["rollout"] for w in euw1_status["workloads"]] == ["complete"], "wave 2 serves the first release"
    # issue 25: the values file records only what rolled out everywhere: it still pins the first release
    assert euw1_status["values_digest"] == a and euw1_status["healthy"] is True, euw1_status["problems"]
    code, history, _ = world.run("history", "prod")
    judged = [(e.get("cluster"), e["release"], e["outcome"]) for e in history["entries"] if e["outcome"] != "started"]
    assert judged == [
        ("use1", "release-1.1.0", "failed"),
        ("euw1", "release-1.0.0", "succeeded"),
        ("use1", "release-1.0.0", "succeeded"),
    ]

    # roll forward, as the hint says: the fixed release reaches every wave
    third, c = world.build("fix: no crash", seed=903)
    assert world.run("deploy", "dev")[0] == 0
    git(world.repo, "tag", "-a", "release-1.2.0", "-m", "release-1.2.0", third)
    code, out, err = world.run("promote", "release-1.2.0")
    assert code == 0, err
    for cluster in (0, 1):
        assert {d for d, state in world.pods(cluster) if state == "Running"} == {c}
    code, shown, _ = world.run("status", "prod")
    assert code == 0 and [(s["cluster"], s["healthy"]) for s in shown["apps"]] == [("use1", True), ("euw1", True)]
    code, diffed, err = world.run("diff", "prod")
    assert code == 0, err
    assert [(a["cluster"], a["wave"], a["installed"]) for a in diffed["apps"]] == [("use1", 1, True), ("euw1", 2, True)]
    changed = [
        (a["cluster"], o["kind"], o["diff"]) for a in diffed["apps"] for o in a["objects"] if o["change"] != "unchanged"
    ]
    assert not changed, "each cluster rendered with the registry it pulls from: no drift"


def helm_processes(marker: str) -> list[str]:
    """The command lines of live helm processes whose arguments name ``marker`` (this test's namespaces)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        line = " ".join(a.decode(errors="replace") for a in argv if a)
        if argv and Path(argv[0].decode(errors="replace")).name == "helm" and marker in line and state != "Z":
            found.append(line)
    return found


def test_sigterm_during_a_two_cluster_wave_stops_both_marks_each_intent_and_exits_130(world: World) -> None:
    """Both prod clusters in wave 1; prod's pods can never be scheduled, and deployctl is told to wait for them
    (a long scheduling grace), so each cluster's rollout watch runs until the rollout timeout (60 s) or a signal.
    SIGTERM to the promote once both clusters are watching: exit 130 within 10 s, no helm of it left, the lock
    free, and each cluster's intent completed `unknown` (helm made a revision there; its rollout was never
    judged), never left `started` and never `succeeded`. Before issue 25 the thread pool waited for both watches
    to time out (60 s) and recorded them as failed rollouts."""
    config = world.repo / "pyproject.toml"
    text = config.read_text().replace("wave = 2", "wave = 1")
    config.write_text(text.replace('promote_from = "dev"', 'promote_from = "dev"\nrollout_timeout_seconds = 60'))
    values = world.repo / "values-prod.yaml"
    never = '  nodeSelector:\n    deployctl.dev/no-such-node: "true"\n'
    grace = '  podAnnotations:\n    deployctl.dev/schedule-grace-seconds: "3600"\n'
    values.write_text(values.read_text() + never + grace)
    git(world.repo, "commit", "-qam", "prod: both clusters in wave 1, pods never scheduled")
    sha, digest = world.build("feat: slow in prod", seed=911)
    code, _, err = world.run("deploy", "dev")
    assert code == 0, err
    git(world.repo, "tag", "-a", "release-1.0.0", "-m", "release-1.0.0", sha)

    argv = [sys.executable, "-m", "deployctl", "--config", str(config), "-o", "json", "promote", "release-1.0.0"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=world.repo)
    try:
        assert proc.stderr is not None
        seen, deadline = "", time.monotonic() + 180
        while seen.count("watching the rollout of api ...") < 2 and time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line, f"the promote ended before both clusters were watching:\n{seen}"
            seen += line
        assert seen.count("watching the rollout of api ...") == 2, seen
        time.sleep(1)  # both watches are under way
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=90)
        finally:
            stopped_in = time.monotonic() - sent
        _, rest = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    os.write(2, f"\n[measure] SIGTERM during a two-cluster wave: exit {code} after {stopped_in:.2f}s\n".encode())
    assert code == 130, seen + rest
    assert stopped_in < 10, f"exit after {stopped_in:.1f}s"
    assert not helm_processes(world.prefix), "no helm of the promote survives"

    code, out, _ = world.run("lock", "status", "prod")
    assert (code, out["locked"]) == (0, False), "the lock was released"
    code, history, _ = world.run("history", "prod", "--limit", "100")
    assert code == 0
    entries = [e for e in history["entries"] if e["action"] == "promote" and e["digest"] == digest]
    intents = {e["cluster"]: e["id"] for e in entries if e["outcome"] == "started"}
    completed = {e["cluster"]: (e["outcome"], e.get("intent")) for e in entries if e["outcome"] != "started"}
    assert sorted(intents) == ["euw1", "use1"], entries
    assert completed == {name: ("unknown", intents[name]) for name in intents}, entries
    for cluster in (0, 1):
        assert len(world.revisions(cluster)) == 1, f"helm made its revision in control plane {cluster}"
