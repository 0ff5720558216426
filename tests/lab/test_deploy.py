"""``deployctl deploy/status/diff/lock`` end to end: real helm 4 (and helm 3), a real control plane with
kwok nodes, a real OCI registry, moto S3 for the lock and the history, a real git repository.

kwok drives pods to Ready, or to CrashLoopBackOff when the image reference contains ``crashloop``,
or to ErrImagePull/ImagePullBackOff when it contains ``does-not-exist``.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from deployctl.app.context import EnvContext
from deployctl.cli import main
from deployctl.config import load
from deployctl.console import Console
from deployctl.history import Entry
from deployctl.runner import ProcessRunner
from deployctl.sandbox import images
from deployctl.sandbox.lab import Lab

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "deploy-tfstate"
HELM_WAIT_BUDGET = 300.0  # helm's default --timeout: what `helm upgrade --wait` would sit through


def measure(line: str) -> None:
    """A measured figure, on the real stderr (capsys holds sys.stderr); shown with ``pytest -s``."""
    os.write(2, f"\n[measure] {line}\n".encode())


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@dataclass
class World:
    """A repository whose config points dev at the lab, in a namespace of its own."""

    repo: Path
    registry: str
    namespace: str
    kubeconfig: Path
    env: dict[str, str]
    capsys: pytest.CaptureFixture[str]
    head: str

    def config(self, name: str = "pyproject.toml") -> Path:
        return self.repo / name

    def write_config(
        self,
        name: str = "pyproject.toml",
        *,
        repository: str = "api",
        values: str = "values-dev.yaml",
        kubeconfig: Path | None = None,
    ) -> Path:
        aws = f'aws = {{ region = "us-east-1", endpoint_url = "{self.env["AWS_ENDPOINT_URL"]}" }}'
        backend = f'backend = {{ bucket = "{BUCKET}", key = "dev/terraform.tfstate", region = "us-east-1" }}'
        cluster = f'cluster = {{ kubeconfig = "{kubeconfig or self.kubeconfig}", context = "deployctl-lab" }}'
        path = self.repo / name
        path.write_text(
            f"""[tool.deployctl]
[tool.deployctl.apps.api]
chart = "{ROOT / "charts" / "api"}"
release = "api"
image = {{ registry = "{self.registry}", repository = "{repository}" }}

[tool.deployctl.environments.dev]
{aws}
terraform = {{ root = "tf/dev", {backend} }}
{cluster}
namespace = "{self.namespace}"
values = "{values}"
lock_timeout_seconds = 120
"""
        )
        return path

    def run(self, *args: str, config: Path | None = None) -> tuple[int, Any, str]:
        """deployctl in this process (-o json); returns (exit code, JSON document, stderr)."""
        self.capsys.readouterr()
        code = main(["--config", str(config or self.config()), "-o", "json", *args])
        captured = self.capsys.readouterr()
        return code, json.loads(captured.out) if captured.out.strip() else None, captured.err

    def spawn(
        self, *args: str, config: Path | None = None, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[str]:
        """deployctl as a child process (for kills and concurrency)."""
        argv = [sys.executable, "-m", "deployctl", "--config", str(config or self.config()), "-o", "json", *args]
        return subprocess.Popen(
            argv, env=dict(env or self.env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=self.repo
        )

    def kubectl(self, *args: str) -> str:
        return subprocess.run(
            ["kubectl", "--kubeconfig", str(self.kubeconfig), "-n", self.namespace, *args],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def helm(self, *args: str, binary: str = "helm", check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [binary, "--kubeconfig", str(self.kubeconfig), "-n", self.namespace, *args],
            env=self.env,
            check=check,
            capture_output=True,
            text=True,
        )

    def revisions(self) -> list[int]:
        result = self.helm("history", "api", "-o", "json", check=False)
        return [int(r["revision"]) for r in json.loads(result.stdout)] if result.returncode == 0 else []

    def pods(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = json.loads(self.kubectl("get", "pods", "-o", "json"))["items"]
        return items

    def ledger(self) -> list[Entry]:
        config = load(self.config())
        entries = EnvContext(config, "dev", ProcessRunner(), Console()).ledger.entries()
        return [e for e in entries if e.outcome != "started"]  # the judged outcomes; intents: ``intents()``

    def intents(self) -> list[Entry]:
        config = load(self.config())
        return [
            e for e in EnvContext(config, "dev", ProcessRunner(), Console()).ledger.entries() if e.outcome == "started"
        ]

    def push(self, repository: str, tag: str, seed: int) -> str:
        return images.push_image(self.registry, repository, tag, seed=seed).digest


@pytest.fixture
def world(
    tmp_path: Path,
    lab: Lab,
    registry: str,
    aws_reset: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> World:
    env = {
        **os.environ,
        **lab.env(),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # moto's documented fake credentials
        "AWS_DEFAULT_REGION": "us-east-1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    env.pop("AWS_PROFILE", None)
    env.pop("DEPLOYCTL_CONFIG", None)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    boto3.client("s3", endpoint_url=aws_reset, region_name="us-east-1").create_bucket(Bucket=BUCKET)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "values-dev.yaml").write_text((ROOT / "values-dev.yaml").read_text())
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "init")
    w = World(
        repo=repo,
        registry=registry,
        namespace=f"t{uuid.uuid4().hex[:8]}",
        kubeconfig=lab.kubeconfig,
        env=env,
        capsys=capsys,
        head=git(repo, "rev-parse", "HEAD"),
    )
    w.write_config()
    return w


def make_pending(w: World, status: str = "pending-upgrade") -> int:
    """Leave the release exactly as a killed ``helm upgrade`` does: a newer revision record stuck in
    ``pending-*`` (helm's secret storage: base64(gzip(JSON)) in ``data.release``, status in a label)."""
    secrets = json.loads(w.kubectl("get", "secrets", "-l", "owner=helm,name=api", "-o", "json"))["items"]
    latest = max(secrets, key=lambda s: int(s["metadata"]["labels"]["version"]))
    doc = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(latest["data"]["release"]))))
    version = int(latest["metadata"]["labels"]["version"]) + 1
    doc["version"] = version
    doc["info"]["status"] = status
    payload = base64.b64encode(gzip.compress(json.dumps(doc).encode())).decode()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": latest["type"],
        "metadata": {
            "name": f"sh.helm.release.v1.api.v{version}",
            "labels": {**latest["metadata"]["labels"], "status": status, "version": str(version)},
        },
        "data": {"release": base64.b64encode(payload.encode()).decode()},
    }
    path = w.repo / "pending-secret.json"
    path.write_text(json.dumps(secret))
    w.kubectl("create", "-f", str(path))
    return version


# --------------------------------------------------------------------------- the happy path


def test_install_upgrade_status_and_history(world: World) -> None:
    first = world.push("api", world.head, seed=1)  # CI tags each image with its commit
    code, out, err = world.run("deploy", "dev")  # default tag: the current commit
    assert code == 0, err
    assert out["apps"][0]["image"]["digest"] == first
    assert out["apps"][0]["image"]["tag"] == world.head
    assert out["apps"][0]["git_sha"] == world.head
    assert out["apps"][0]["revision"] == 1
    assert out["apps"][0]["helm_major_version"] == 4

    second = world.push("api", "v2", seed=2)
    code, out, err = world.run("deploy", "dev", "--image-tag", "v2", "--app", "api")
    assert code == 0, err
    assert out["apps"][0]["revision"] == 2
    assert out["apps"][0]["image"]["digest"] == second

    code, out, err = world.run("status", "dev")
    assert code == 0, err
    [app] = out["apps"]
    assert (app["revision"], app["helm_status"], app["digest"], app["tag"]) == (2, "deployed", second, "v2")
    assert (app["ready"], app["desired"], app["healthy"]) == (1, 1, True)
    assert app["matches_values"] is None  # dev's values file pins no digest
    running = [p for p in world.pods() if p["status"].get("phase") == "Running"]
    assert running
    assert all(second in p["spec"]["containers"][0]["image"] for p in running)

    entries = world.ledger()
    assert [(e.action, e.outcome, e.digest) for e in entries] == [
        ("deploy", "succeeded", second),
        ("deploy", "succeeded", first),
    ]
    assert entries[1].commit == world.head
    assert entries[0].tag == "v2"
    # each written ahead as an intent before helm ran, and completed by the outcome
    assert sorted(e.intent or "" for e in entries) == sorted(i.id for i in world.intents())

    code, out, _ = world.run("lock", "status", "dev")
    assert code == 0
    assert out["locked"] is False


def test_helm3_compatibility(world: World, tmp_path: Path) -> None:
    """With helm 3 first on PATH as `helm`, install and upgrade work the same."""
    bin_dir = tmp_path / "helm3-first"
    bin_dir.mkdir()
    helm3 = next(Path(p) / "helm3" for p in world.env["PATH"].split(os.pathsep) if (Path(p) / "helm3").exists())
    (bin_dir / "helm").symlink_to(helm3)
    env = {**world.env, "PATH": f"{bin_dir}{os.pathsep}{world.env['PATH']}"}
    world.push("api", "v1", seed=11)
    digest = world.push("api", "v2", seed=12)
    for tag in ("v1", "v2"):
        proc = world.spawn("deploy", "dev", "--image-tag", tag, env=env)
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        assert json.loads(out)["apps"][0]["helm_major_version"] == 3
    assert json.loads(out)["apps"][0]["image"]["digest"] == digest
    assert json.loads(out)["apps"][0]["revision"] == 2


# --------------------------------------------------------------------------- failing fast, no rollback


@pytest.mark.parametrize(
    ("repository", "reasons"),
    [
        ("api-crashloop", {"CrashLoopBackOff"}),
        ("api-does-not-exist", {"ErrImagePull", "ImagePullBackOff"}),
    ],
)
def test_broken_image_fails_in_seconds_and_old_pods_keep_serving(
    world: World, repository: str, reasons: set[str]
) -> None:
    world.push("api", "good", seed=21)
    code, _, err = world.run("deploy", "dev", "--image-tag", "good")
    assert code == 0, err
    [serving] = [p["metadata"]["name"] for p in world.pods()]

    broken = world.write_config("broken.toml", repository=repository)
    bad = world.push(repository, "bad", seed=22)
    started = time.monotonic()
    code, out, err = world.run("deploy", "dev", "--image-tag", "bad", config=broken)
    elapsed = time.monotonic() - started
    assert code == 1, err
    assert elapsed < 60, f"took {elapsed:.1f}s (helm --wait would take {HELM_WAIT_BUDGET:.0f}s)"
    measure(f"deployctl time-to-failure for {repository}: {elapsed:.1f}s")
    details = out["error"]
    assert details["reason"] in reasons
    assert details["container"] == "api"
    assert details["pod"] in err
    assert details["reason"] in err
    assert "Roll forward" in err
    assert "rolled back" in err  # says nothing was

    pods = {p["metadata"]["name"]: p for p in world.pods()}
    assert serving in pods, "the old pod must keep serving"
    assert all(c["ready"] for c in pods[serving]["status"]["containerStatuses"])
    # No automatic rollback: the release stays at the broken revision, the history says failed.
    assert world.revisions() == [1, 2]
    [last, *_] = world.ledger()
    assert (last.action, last.outcome, last.digest) == ("deploy", "failed", bad)

    # Roll forward: a fixed image deploys over the broken revision.
    world.push("api", "fixed", seed=23)
    code, out, err = world.run("deploy", "dev", "--image-tag", "fixed")
    assert code == 0, err
    assert out["apps"][0]["revision"] == 3


# --------------------------------------------------------------------------- recovery and the lock


def test_release_left_pending_is_recovered_under_the_lock(world: World) -> None:
    world.push("api", "v1", seed=31)
    digest = world.push("api", "v2", seed=32)
    code, _, err = world.run("deploy", "dev", "--image-tag", "v1")
    assert code == 0, err
    pending = make_pending(world)
    stuck = world.helm("upgrade", "api", str(ROOT / "charts" / "api"), "--set-string", "image.tag=x", check=False)
    assert "another operation (install/upgrade/rollback) is in progress" in stuck.stderr  # the state is real

    code, out, err = world.run("deploy", "dev", "--image-tag", "v2")
    assert code == 0, err
    assert f"pending-upgrade revision {pending}" in out["apps"][0]["recovered"]
    assert "left pending-upgrade by an interrupted run" in err
    assert out["apps"][0]["image"]["digest"] == digest
    assert out["apps"][0]["revision"] == pending  # the interrupted revision number is reused by the real one
    actions = [(e.action, e.outcome) for e in world.ledger()]
    assert actions[:2] == [("deploy", "succeeded"), ("recover", "succeeded")]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def test_sigkill_mid_upgrade_then_deploy_again_succeeds(world: World) -> None:
    """A CI job killed mid-deploy (deployctl and its helm child, SIGKILL): the next deploy takes over
    the dead run's lock, recovers a pending release if one was left, and succeeds."""
    world.push("api", "v1", seed=41)
    digest = world.push("api", "v2", seed=42)
    code, _, err = world.run("deploy", "dev", "--image-tag", "v1")
    assert code == 0, err

    from kubernetes import client as kclient
    from kubernetes import config as kconfig
    from kubernetes import watch

    core = kclient.CoreV1Api(kconfig.new_client_from_config(str(world.kubeconfig), context="deployctl-lab"))
    proc = world.spawn("deploy", "dev", "--image-tag", "v2")
    # Kill the moment helm has written its pending-upgrade record, i.e. mid-upgrade.
    for _ in watch.Watch().stream(
        core.list_namespaced_secret,
        world.namespace,
        label_selector="owner=helm,name=api,status=pending-upgrade",
        timeout_seconds=60,
    ):
        break
    helm_pids = [c for c in _children(proc.pid) if " upgrade " in _cmdline(c)]
    for pid in (proc.pid, *helm_pids):  # the whole job dies at once, as when a CI runner is cancelled
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    statuses = json.loads(world.helm("list", "-o", "json").stdout)
    left = statuses[0]["status"] if statuses else "none"
    measure(f"release status after SIGKILL: {left}")

    code, out, err = world.run("deploy", "dev", "--image-tag", "v2")
    assert code == 0, err
    assert "took over a stale lock" in err  # the killed run's lock: same host, process gone
    assert out["apps"][0]["image"]["digest"] == digest
    if left.startswith("pending-"):
        assert out["apps"][0]["recovered"], "a pending release must be recovered"
    assert json.loads(world.helm("list", "-o", "json").stdout)[0]["status"] == "deployed"


def test_concurrent_deploys_are_serialized_by_the_lock(world: World) -> None:
    world.push("api", "v1", seed=51)
    world.push("api", "v2", seed=52)
    first = world.spawn("deploy", "dev", "--image-tag", "v1")
    second = world.spawn("deploy", "dev", "--image-tag", "v2")
    results = [p.communicate(timeout=300) for p in (first, second)]
    for proc, (_, err) in zip((first, second), results, strict=True):
        assert proc.returncode == 0, err
        assert "another operation" not in err
    assert any("waiting for the lock of dev" in err for _, err in results)
    assert sorted(json.loads(out)["apps"][0]["revision"] for out, _ in results) == [1, 2]
    assert [e.outcome for e in world.ledger()] == ["succeeded", "succeeded"]
    code, out, _ = world.run("lock", "status", "dev")
    assert (code, out["locked"]) == (0, False)


# --------------------------------------------------------------------------- diff


def test_drift_shows_in_diff(world: World) -> None:
    world.push("api", "v1", seed=61)
    code, _, err = world.run("deploy", "dev", "--image-tag", "v1")
    assert code == 0, err
    code, out, err = world.run("diff", "dev", "--detailed-exitcode")
    assert code == 0, (out, err)
    assert out["changed"] is False

    world.kubectl("scale", "deployment/api", "--replicas=3")
    code, out, err = world.run("diff", "dev", "--detailed-exitcode")
    assert code == 3, err
    [changed] = [o for o in out["apps"][0]["objects"] if o["change"] != "unchanged"]
    assert changed["kind"] == "Deployment"
    assert "-  replicas: 3" in changed["diff"]
    assert "+  replicas: 1" in changed["diff"]

    code, _, err = world.run("deploy", "dev", "--image-tag", "v1")  # a deploy restores the chart's state
    assert code == 0, err
    code, out, _ = world.run("diff", "dev", "--detailed-exitcode")
    assert code == 0, out


# --------------------------------------------------------------------------- bad inputs


def test_bad_inputs_fail_clearly_and_create_no_revision(world: World, tmp_path: Path) -> None:
    world.push("api", "v1", seed=71)
    code, _, err = world.run("deploy", "dev", "--image-tag", "v1")
    assert code == 0, err
    assert world.revisions() == [1]

    (world.repo / "values-bad.yaml").write_text("replicaCount: abc\n")
    schema = world.write_config("schema.toml", values="values-bad.yaml")
    missing = world.write_config("missing.toml", values="values-nope.yaml")
    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(world.kubeconfig.read_text().replace("https://127.0.0.1:", "https://127.0.0.1:1#"))
    unreachable = world.write_config("unreachable.toml", kubeconfig=dead)
    cases: list[tuple[list[str], Path | None, int, str]] = [
        (["deploy", "dev", "--app", "nope", "--image-tag", "v1"], None, 2, "unknown app 'nope'"),
        (["deploy", "dev", "--image-tag", "v1"], missing, 2, "values-nope.yaml"),
        (["deploy", "dev", "--image-tag", "v1"], schema, 2, "/replicaCount"),
        (["deploy", "dev", "--image-tag", "no-such-tag"], None, 2, "'no-such-tag' not found"),
        (["deploy", "dev", "--digest", "sha256:" + "f" * 64], None, 2, "not found"),
        (["deploy", "dev", "--digest", "sha256:nope"], None, 2, "sha256:<64 hex digits>"),
        (["deploy", "dev", "--image-tag", "v1"], unreachable, 1, "unreachable"),
        (["status", "dev"], unreachable, 1, "cluster"),
    ]
    for args, config, expected, needle in cases:
        code, out, err = world.run(*args, config=config)
        assert code == expected, (args, err)
        assert needle in err, (args, err)
        assert out["ok"] is False
        assert "Traceback" not in err
    assert world.revisions() == [1]
    assert [e.outcome for e in world.ledger()] == ["succeeded"]
    code, out, _ = world.run("lock", "status", "dev")
    assert out["locked"] is False  # every failure released the lock


# --------------------------------------------------------------------------- measurement (opt-in: 5 minutes)


@pytest.mark.skipif(
    not os.environ.get("DEPLOYCTL_MEASURE"), reason="set DEPLOYCTL_MEASURE=1 (runs helm --wait, ~5 min)"
)
def test_measure_helm_wait_time_to_failure(world: World) -> None:
    world.push("api", "good", seed=81)
    code, _, err = world.run("deploy", "dev", "--image-tag", "good")
    assert code == 0, err
    bad = world.push("api-crashloop", "bad", seed=82)
    started = time.monotonic()
    result = world.helm(
        "upgrade", "api", str(ROOT / "charts" / "api"), "-f", str(world.repo / "values-dev.yaml"),
        "--set-string", f"image.repository={world.registry}/api-crashloop", "--set-string", f"image.digest={bad}",
        "--wait", "--timeout", "5m", check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    measure(f"helm upgrade --wait --timeout 5m time-to-failure: {elapsed:.1f}s")
    assert result.returncode != 0
    assert elapsed > 60
