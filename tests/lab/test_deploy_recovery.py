"""A deploy that was interrupted or raced, end to end (real helm, control plane, registry, moto): a release left
pending is recovered under the lock, a SIGKILL mid-upgrade leaves nothing the next deploy cannot finish, and
concurrent deploys are serialized by the lock."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from tests.lab.deploy_world import BUCKET, DeployWorld, make_pending, measure
from tests.lab.world import ROOT

pytestmark = pytest.mark.lab


@pytest.fixture
def world(deploy_world: DeployWorld) -> DeployWorld:
    return deploy_world


def test_release_left_pending_is_recovered_under_the_lock(world: DeployWorld) -> None:
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


def test_sigkill_mid_upgrade_then_deploy_again_succeeds(world: DeployWorld) -> None:
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


def _lock_objects(world: DeployWorld, name: str) -> list[str]:
    """The keys under ``deployctl/locks/<name>`` in the state bucket, read straight from S3 (fast enough to see a
    lock held for a second)."""
    s3 = boto3.client("s3", endpoint_url=world.env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"deployctl/locks/{name}")
    return [o["Key"] for o in listed.get("Contents", ())]


def _until(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_concurrent_deploys_are_serialized_by_the_lock(world: DeployWorld) -> None:
    world.push("api", "v1", seed=51)
    world.push("api", "v2", seed=52)
    first = world.spawn("deploy", "dev", "--image-tag", "v1")
    _until(lambda: _lock_objects(world, "dev.json"), 120, "the first deploy to hold dev's lock")
    # The holder is held still (well within its 120 s lease) until the second deploy waits in the lock's queue: on a
    # loaded machine the second could otherwise start after the first had finished, and never meet the lock.
    first.send_signal(signal.SIGSTOP)
    try:
        second = world.spawn("deploy", "dev", "--image-tag", "v2")
        _until(lambda: _lock_objects(world, "dev.queue/"), 60, "the second deploy to wait in dev's lock queue")
    finally:
        first.send_signal(signal.SIGCONT)
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
