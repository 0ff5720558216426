"""Hung dependencies (issue 13, item 4), against the lab with real processes: a registry and an AWS endpoint
(moto) stopped with SIGSTOP, so they accept connections and never answer, as a wedged server or a black-holed
load balancer does. Each run reports within its bound, names the dependency and the step, exits 1 without
"internal error", says every retry on stderr while it waits, and releases its lock (or says separately that
it could not).

This module starts its own moto and registry (a small ``Lab``) to stop them without touching the session's;
the cluster is the session lab's. Measured figures are printed as ``[measure]`` lines."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from deployctl.ledger import lock, lock_record
from deployctl.sandbox import tools
from deployctl.sandbox.lab import Lab
from deployctl.sandbox.processes import Service
from tests.lab.test_promotion_evidence import BUCKET, World, git, make_world

pytestmark = pytest.mark.lab

BOUND = 60  # generous: the designed bounds are ~33 s (registry) and ~21 s per AWS call (README)


def measure(line: str) -> None:
    os.write(2, f"\n[measure] {line}\n".encode())


def say(line: str) -> None:
    sys.stderr.write(line + "\n")


@pytest.fixture(scope="module")
def own(lab_tools: tools.Tools, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A moto and a registry of this module's own, to stop and continue."""
    mini = Lab(state_dir=tmp_path_factory.mktemp("hung"), tools=lab_tools, registries=1)
    mini.start(["moto", "registry"], progress=say)
    try:
        yield mini
    finally:
        for service in mini.services.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(service.pid, signal.SIGCONT)
        mini.stop()


@contextlib.contextmanager
def stopped(service: Service) -> Iterator[float]:
    """``service`` stopped (SIGSTOP to its process group: connections are accepted, nothing answers) for the
    block; yields when it was stopped, continues it afterwards whatever happened."""
    os.killpg(service.pid, signal.SIGSTOP)
    try:
        yield time.monotonic()
    finally:
        os.killpg(service.pid, signal.SIGCONT)


@pytest.fixture
def world(
    tmp_path: Path, lab: Lab, own: Lab, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> World:
    """dev and prod on the session's cluster; their registry (the bare CNCF registry, no front) and their AWS
    (locks, ledgers) are this module's own, emptied first."""
    netloc = urllib.parse.urlsplit(own.moto_url).netloc
    conn = http.client.HTTPConnection(netloc, timeout=10)
    conn.request("POST", "/moto-api/reset")
    assert conn.getresponse().status == 200
    conn.close()
    return make_world(tmp_path, lab, own.registry_backend_hosts[0], own.moto_url, monkeypatch, capsys)


def spawn(world: World, *args: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "deployctl", "--config", str(world.repo / "pyproject.toml"), *args]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=world.repo)


def wait_for(proc: subprocess.Popen[str], needle: str, timeout: float = 120) -> str:
    """Read the child's stderr until ``needle`` shows up."""
    assert proc.stderr is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen += line
        if needle in line:
            return seen
    raise AssertionError(f"{needle!r} never appeared:\n{seen}")


def finish(proc: subprocess.Popen[str], seen: str = "") -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=BOUND * 3)
    return proc.returncode, out, seen + err


def s3_of(own: Lab) -> Any:
    return boto3.client("s3", endpoint_url=own.moto_url, region_name="us-east-1")


def lock_of(own: Lab, env: str) -> dict[str, Any] | None:
    """The environment's lock as stored, or None."""
    s3 = s3_of(own)
    try:
        body = s3.get_object(Bucket=BUCKET, Key=lock_record.lock_key(env))["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    loaded: dict[str, Any] = json.loads(body)
    return loaded


def test_deploy_with_a_stopped_registry_reports_it_within_its_bound(world: World, own: Lab) -> None:
    sha, _ = world.commit("feat: A", seed=501)
    host = world.registry
    with stopped(own.services["registry-0-backend"]) as since:
        code, _, err = finish(spawn(world, "deploy", "dev", "--image-tag", sha))
        took = time.monotonic() - since
    measure(f"deploy dev, registry stopped: exit {code} after {took:.1f}s")
    assert code == 1, err
    assert took < BOUND, err
    assert f"registry {host} not answering, retry 2/4 in 1 s: resolve {world.repository}:{sha}" in err
    assert f"registry {host} not answering, retry 3/4 in 2 s" in err
    assert f"error: registry {host} not answering: resolve {world.repository}:{sha} gave up after 3 attempts" in err
    assert f"hint: check that the registry {host} is up" in err
    assert "internal error" not in err and "Traceback" not in err
    assert lock_of(own, "dev") is None, "the image is resolved before the lock: nothing to release"


def test_promote_with_the_registry_hung_under_the_lock_releases_the_lock(world: World, own: Lab) -> None:
    sha, digest = world.commit("feat: B", seed=502)
    assert world.run("deploy", "dev", "--image-tag", sha)[0] == 0
    git(world.repo, "tag", "-a", "release-1.0.0", "-m", "release-1.0.0")
    values_before = world.prod_values()
    holder = lock.EnvironmentLock("prod", BUCKET, s3_of(own))
    with contextlib.ExitStack() as registry_stopped:
        with holder.hold("the test holds prod while the registry stops", timeout=0):
            proc = spawn(world, "promote", "release-1.0.0", "--no-deploy")
            seen = wait_for(proc, "waiting for the lock of prod")  # planned and judged: the registry answered
            since = registry_stopped.enter_context(stopped(own.services["registry-0-backend"]))
        # the lock is free: the promotion takes it, judges again, and the registry does not answer
        code, _, err = finish(proc, seen)
        took = time.monotonic() - since
    measure(f"promote --no-deploy, registry stopped under prod's lock: exit {code} after {took:.1f}s")
    assert code == 1, err
    assert took < BOUND + lock.POLL_SECONDS, err
    assert f"registry {world.registry} not answering, retry 2/4 in 1 s" in err
    assert re.search(
        rf"error: registry {re.escape(world.registry)} not answering: \S+ .* gave up after 3 attempts", err
    )
    assert "internal error" not in err and "Traceback" not in err
    assert "could not release" not in err
    assert lock_of(own, "prod") is None, "prod's lock was released"
    assert world.prod_values() == values_before, "nothing recorded"
    assert world.tag_digest("release-1.0.0") in (None, digest), "the tag never names another image"


def test_lock_status_with_aws_stopped_names_the_endpoint_and_the_step(world: World, own: Lab) -> None:
    endpoint = urllib.parse.urlsplit(own.moto_url).netloc
    with stopped(own.services["moto"]) as since:
        code, out, err = finish(spawn(world, "lock", "status", "dev"))
        took = time.monotonic() - since
    measure(f"lock status dev, AWS (S3) stopped: exit {code} after {took:.1f}s")
    assert code == 1, err
    assert took < BOUND, err
    assert out == ""
    assert err.splitlines()[:2] == [
        f"AWS endpoint {endpoint} not answering, retry 2/3: S3 GetObject (no answer within 6 s)",
        f"AWS endpoint {endpoint} not answering, retry 3/3: S3 GetObject (no answer within 6 s)",
    ]
    assert (
        f"error: read the lock of dev (s3://{BUCKET}/deployctl/locks/dev.json): AWS endpoint {endpoint} "
        "not answering: no answer within 6 s, 3 tries"
    ) in err
    assert "internal error" not in err and "Traceback" not in err


def test_deploy_with_aws_stopped_mid_rollout_reports_the_ledger_write_and_the_lock_apart(
    world: World, own: Lab
) -> None:
    """The attack of issue 13: S3 stops while helm rolls out. The error is the ledger write that could not
    happen (not a lock-release ReadTimeoutError); the lock release that could not happen either is a separate
    warning naming the lock; after S3 is back, the next deploy runs and every rollout has its outcome."""
    sha, _ = world.commit("feat: C", seed=503)
    endpoint = urllib.parse.urlsplit(own.moto_url).netloc
    proc = spawn(world, "deploy", "dev", "--image-tag", sha)
    seen = wait_for(proc, "upgrade --install")  # the intent is written; S3 is not needed until the outcome
    with stopped(own.services["moto"]) as since:
        code, _, err = finish(proc, seen)
        took = time.monotonic() - since
    measure(f"deploy dev, AWS (S3) stopped mid-rollout: exit {code} after {took:.1f}s")
    assert code == 1, err
    # three AWS calls (the lock check before the write, the ledger write, the lock release) plus the rollout
    assert took < BOUND + 50, err
    assert f"AWS endpoint {endpoint} not answering, retry 2/3: S3 PutObject" in err
    assert re.search(rf"error: record deploy in the history of dev \(s3://{BUCKET}\): AWS endpoint {endpoint} "
                     r"not answering", err), err  # fmt: skip
    released = re.search(r"could not release the lock of 'dev' \(id (\w+)\): .*AWS endpoint .* not answering", err)
    assert released, err
    assert "internal error" not in err and "Traceback" not in err

    # Continued, moto serves what was queued while it was stopped (a late delete may free the lock): the lock is
    # gone or still the one the run named, and the run it names is told how to break it.
    held = lock_of(own, "dev")
    assert held is None or held["id"] == released[1], held
    if held is not None:
        assert world.run("lock", "break", "dev", "--id", released[1])[0] == 0
    code, _, err = world.run("deploy", "dev", "--image-tag", sha)
    assert code == 0, err
    entries = world.run("history", "dev", "--limit", "100")[1]["entries"]
    intents = {e["id"] for e in entries if e["outcome"] == "started"}
    completed = {e["intent"] for e in entries if e.get("intent")}
    assert len(intents) == 2 and intents <= completed, "every rollout is in the ledger with an outcome"
