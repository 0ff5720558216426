"""The environment lock as a lease, with real deployctl processes against the lab (issue 25, section 3): real
helm, a real control plane with kwok nodes, moto S3 for the lock and the ledger.

The rollouts are made slow for real: the lab DaemonSet chart with ``minReadySeconds`` (its pods are ready at
once; the DaemonSet controller counts them available only that long after), every pod replaced at once.
The lock's time to live is a few seconds (``lock_ttl_seconds``), so each rollout outlasts several TTLs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from deployctl.ledger.lock_record import lock_key
from tests.lab.deploy_world import BUCKET, World, measure, use_chart

pytestmark = pytest.mark.lab

TTL = 5  # seconds: renewed every ~1.7 s


@pytest.fixture
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    w: World = request.getfixturevalue("deploy_world")
    yield w
    w.kubectl("delete", "namespace", w.namespace, "--wait=false")


def slow(w: World, min_ready: int) -> Path:
    """A config whose app is the lab DaemonSet, available ``min_ready`` s after its pods are ready, with a
    lock that lives ``TTL`` s unless renewed."""
    config = use_chart(w, "daemonset", {"minReadySeconds": min_ready, "maxUnavailable": "100%"}, "daemonset")
    text = config.read_text()
    config.write_text(
        text.replace("lock_timeout_seconds = 120", f"lock_timeout_seconds = 120\nlock_ttl_seconds = {TTL}")
    )
    return config


def s3(w: World) -> Any:
    return boto3.client("s3", endpoint_url=w.env["AWS_ENDPOINT_URL"], region_name="us-east-1")


def lock(client: Any) -> tuple[dict[str, Any], str] | None:
    """The stored lock and its ETag, or None."""
    try:
        got = client.get_object(Bucket=BUCKET, Key=lock_key("dev"))
    except client.exceptions.NoSuchKey:
        return None
    return json.loads(got["Body"].read()), str(got["ETag"])


def until(what: str, found: Callable[[], Any], timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := found()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return value


def deployed(w: World) -> bool:
    releases = json.loads(w.helm("list", "-o", "json").stdout)
    return bool(releases) and releases[0]["status"] == "deployed"


def finish(proc: subprocess.Popen[str], timeout: float = 180) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


class Progress:
    """A spawned run's stderr, read line by line as it comes (its progress says which phase it is in)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        self.lines.extend(iter(self.proc.stderr.readline, ""))

    def says(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def finish(self, timeout: float) -> tuple[int, str]:
        self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return self.proc.returncode, "".join(self.lines)


def test_a_rollout_longer_than_several_ttls_keeps_its_lock_and_a_second_deploy_waits(world: World) -> None:
    config = slow(world, min_ready=20)
    world.push("daemonset", "v1", seed=2501)
    world.push("daemonset", "v2", seed=2502)
    client = s3(world)
    started = time.monotonic()
    first = world.spawn("deploy", "dev", "--image-tag", "v1", config=config)
    held, _ = until("the first run's lock", lambda: lock(client))
    until("the first run's helm revision", lambda: deployed(world))
    second = world.spawn("deploy", "dev", "--image-tag", "v2", config=config)
    etags = set()
    while first.poll() is None:  # the whole time the first run rolls out, the lock stays its own, renewed
        seen = lock(client)
        if seen is not None and first.poll() is None:
            assert seen[0]["id"] == held["id"], f"the first run's lock was replaced while it ran: {seen[0]}"
            etags.add(seen[1])
        time.sleep(0.5)
    first_took = time.monotonic() - started
    code, err = finish(first)
    assert code == 0, err
    code, second_err = finish(second)
    assert code == 0, second_err
    measure(f"lease: a {first_took:.1f}s rollout under a {TTL}s TTL, the lock renewed {len(etags) - 1} times seen")
    assert first_took > 3 * TTL, "the rollout outlasted several TTLs"
    assert len(etags) >= 3, "renewed along the way (each renewal is a new ETag)"
    assert "waiting for the lock of dev" in second_err
    assert "took over" not in second_err and "took over" not in err
    assert world.revisions() == [1, 2], "the second run's helm revision came after the first's"
    newest, older = world.ledger()
    assert (older.outcome, newest.outcome) == ("succeeded", "succeeded")
    assert older.release == "api@1" and newest.release == "api@2"
    assert lock(client) is None


def test_a_holder_stopped_past_its_ttl_is_taken_over_and_writes_nothing_when_resumed(world: World) -> None:
    """SIGSTOP (a frozen VM, a stalled runner) the first run while it watches its rollout; a second run takes
    its lock over once it expired by S3's clock and rolls out; SIGCONT: the first run writes nothing more (no
    ledger entry, no helm revision) and exits 5 saying whom it lost the lock to."""
    config = slow(world, min_ready=30)
    world.push("daemonset", "v1", seed=2511)
    world.push("daemonset", "v2", seed=2512)
    client = s3(world)
    first = world.spawn("deploy", "dev", "--image-tag", "v1", config=config)
    progress = Progress(first)
    try:
        held, _ = until("the first run's lock", lambda: lock(client))
        until("the first run's watch", lambda: progress.says("watching the rollout of api"))
        assert world.revisions() == [1] and len(world.intents()) == 1
        os.kill(first.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        second = world.spawn("deploy", "dev", "--image-tag", "v2", config=config)
        taken, _ = until("the take-over", lambda: (s := lock(client)) and s[0]["id"] != held["id"] and s)
        waited = time.monotonic() - stopped
    finally:
        os.kill(first.pid, signal.SIGCONT)
    resumed = time.monotonic()
    code, err = progress.finish(timeout=60)
    stopped_after = time.monotonic() - resumed
    measure(f"lease: taken over {waited:.1f}s after its holder stopped (TTL {TTL}s); fenced {stopped_after:.1f}s after")
    assert code == 5, err
    assert f"lost the lock of dev to {taken['owner']}@{taken['host']}" in err, err
    assert "this run wrote nothing after that" in err
    assert taken["fence"] > held["fence"], "the take-over has a higher fencing number"
    code, second_err = finish(second)
    assert code == 0, second_err
    assert "took over a stale lock of dev" in second_err
    assert world.revisions() == [1, 2], "no helm revision from the first run after the take-over"
    outcomes = [e.outcome for e in world.ledger()]
    assert outcomes == ["succeeded", "unknown"], "the second run's verdict, and its settling of the first's intent"
    assert len(world.intents()) == 2, "nothing else: the first run recorded nothing after the take-over"
    assert lock(client) is None
