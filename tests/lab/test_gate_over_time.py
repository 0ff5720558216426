"""The promotion gate over time (issue 25 §1, §2, §4, §5), each sequence run against the lab: real helm, a real
control plane with kwok, a real registry, moto S3 for the locks and ledgers, real deployctl processes where a
run must wait or die.

- a digest that crashes after its healthy verdict is refused (the gate judges dev live);
- a failure of the digest restarts its soak; a killed rollout of another digest ends it;
- a change window that begins while a promotion waits for prod's lock refuses it;
- ``promote --no-deploy`` records the image, and the next ``promote`` deploys it (never "already runs there").
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
import yaml

from deployctl.app.context import EnvContext
from deployctl.config import load
from deployctl.console import Console
from deployctl.ledger import lock
from deployctl.runner import ProcessRunner
from deployctl.sandbox.lab import Lab
from tests.lab.promotion_world import BUCKET, PromotionWorld, make_world
from tests.lab.world import git

pytestmark = pytest.mark.lab
SOAK_MINUTES = 0.2  # 12 s: long enough to tell periods apart, short enough for the suite


@pytest.fixture
def soaked(
    tmp_path: Path,
    lab: Lab,
    registry: str,
    aws_reset: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[PromotionWorld]:
    world = make_world(tmp_path, lab, registry, aws_reset, monkeypatch, capsys, soak_minutes=SOAK_MINUTES)
    yield world
    for env in ("dev", "prod"):
        kubectl(world, env, "delete", "namespace", f"{world.namespace}-{env}", "--wait=false", check=False)


@pytest.fixture
def unsoaked(promotion_world: PromotionWorld) -> PromotionWorld:
    return promotion_world


def kubectl(world: PromotionWorld, env: str, *args: str, check: bool = True) -> str:
    argv = ["kubectl", "--kubeconfig", str(world.lab.kubeconfig), "-n", f"{world.namespace}-{env}", *args]
    return subprocess.run(argv, check=check, capture_output=True, text=True).stdout


def spawn(world: PromotionWorld, *args: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "deployctl", "--config", str(world.repo / "pyproject.toml"), "-o", "json", *args]
    return subprocess.Popen(argv, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _queue_tickets(world: PromotionWorld, env: str) -> list[str]:
    """The keys of the runs waiting in ``env``'s lock queue (``ledger.lock_queue``)."""
    s3 = boto3.client("s3", endpoint_url=world.lab.moto_url, region_name="us-east-1")
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"deployctl/locks/{env}.queue/")
    return [o["Key"] for o in listed.get("Contents", ())]


def until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_a_digest_that_crashes_after_its_healthy_verdict_is_not_promoted(unsoaked: PromotionWorld) -> None:
    """The issue's sequence: D healthy in dev, then its pods crash; `status dev` exits 1, but the gate said
    "ok verified-in-source … (still runs there)" and the promote retagged D and upgraded prod."""
    world = unsoaked
    sha, digest = world.commit("feat: D", seed=401)
    assert world.run("deploy", "dev", "--image-tag", sha)[0] == 0
    git(world.repo, "tag", "-a", "release-1.0.0", "-m", "release-1.0.0")
    world.lab.mark_image(digest, "crashloop")  # new pods of D crash from now on
    kubectl(world, "dev", "delete", "pods", "--all", "--wait=false")  # the running ones are replaced: they crash
    until(lambda: world.run("status", "dev")[0] == 1, 60, "dev's pods of D to crash")
    values_before = world.prod_values()
    for args in (["--dry-run"], []):
        code, out, err = world.run("promote", "release-1.0.0", *args)
        assert code == 4, (args, err)
        message = out["error"]["message"]
        assert f"{digest} runs in dev but is not healthy now: dev: deployment api" in message, message
        assert "--skip-dev-check" not in out["error"]["hint"]
    assert world.tag_digest("release-1.0.0") is None, "no registry change"
    assert world.prod_values() == values_before
    assert world.run("history", "prod")[1]["entries"] == []


def test_a_failure_of_the_digest_restarts_its_soak(soaked: PromotionWorld) -> None:
    """Healthy at t0, failed, healthy again: the soak counts from the second healthy rollout, never from t0."""
    world = soaked
    sha, digest = world.commit("feat: D", seed=411)
    assert world.run("deploy", "dev", "--image-tag", sha)[0] == 0
    time.sleep(SOAK_MINUTES * 60 + 1)  # D has now run healthy longer than the soak
    values = world.repo / "values-dev.yaml"
    good = values.read_text()
    broken = yaml.safe_load(good)
    broken["api"]["nodeSelector"] = {"deployctl.dev/no-such-node": "true"}  # D now fails to schedule
    values.write_text(yaml.safe_dump(broken))
    assert world.run("deploy", "dev", "--image-tag", sha)[0] == 1, "a failed rollout of D"
    values.write_text(good)
    assert world.run("deploy", "dev", "--image-tag", sha)[0] == 0, "D healthy again: a new period from zero"
    git(world.repo, "tag", "-a", "release-1.0.0", "-m", "release-1.0.0")
    code, out, err = world.run("promote", "release-1.0.0")
    assert code == 4, err
    assert f"{digest} has run healthy in dev for " in out["error"]["message"]
    assert "of the 12s required" in out["error"]["message"], out["error"]["message"]
    time.sleep(SOAK_MINUTES * 60 + 1)
    code, out, err = world.run("promote", "release-1.0.0")
    assert code == 0, err


def test_a_killed_rollout_of_another_digest_ends_the_digests_period(soaked: PromotionWorld) -> None:
    """D healthy; E's deploy is killed after helm made its revision (dev may run E's pods now): D's proven time
    ends where E's rollout began, however long ago D rolled out."""
    world = soaked
    sha_d, digest_d = world.commit("feat: D", seed=421)
    assert world.run("deploy", "dev", "--image-tag", sha_d)[0] == 0
    sha_e, digest_e = world.commit("feat: E", seed=422)
    world.lab.mark_image(digest_e, "not-ready")  # E's rollout lasts: its pods never get ready
    child = spawn(world, "deploy", "dev", "--image-tag", sha_e)

    def revision_two() -> bool:
        argv = ["helm", "--kubeconfig", str(world.lab.kubeconfig), "-n", f"{world.namespace}-dev", "history", "api"]
        listed = subprocess.run([*argv, "-o", "json"], capture_output=True, text=True, check=False).stdout
        return any(r["revision"] == 2 for r in json.loads(listed or "[]"))

    until(revision_two, 60, "E's helm revision")
    child.send_signal(signal.SIGKILL)
    child.communicate()
    time.sleep(SOAK_MINUTES * 60 + 1)  # longer than the soak since D rolled out
    git(world.repo, "tag", "-a", "release-1.0.0", "-m", "release-1.0.0", sha_d)
    code, out, err = world.run("promote", "release-1.0.0")
    assert code == 4, err
    message = out["error"]["message"]
    assert f"{digest_d} has run healthy in dev for " in message and "of the 12s required" in message, message
    assert world.tag_digest("release-1.0.0") is None


def test_a_freeze_that_begins_while_waiting_for_the_lock_refuses(unsoaked: PromotionWorld) -> None:
    """The issue's sequence: a promote waited for prod's lock while a change window began, and ran in it (exit 0,
    no override recorded)."""
    world = unsoaked
    sha, _ = world.commit("feat: D", seed=431)
    assert world.run("deploy", "dev", "--image-tag", sha)[0] == 0
    git(world.repo, "tag", "-a", "release-1.0.0", "-m", "release-1.0.0")
    opens = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=12)
    window = f"{opens:%Y-%m-%dT%H:%M:%S} - {opens + timedelta(hours=1):%Y-%m-%dT%H:%M:%S}: v2 launch"
    config = world.repo / "pyproject.toml"
    config.write_text(
        config.read_text() + f'\n[tool.deployctl.environments.prod.freeze]\ndated = {{ launch = "{window}" }}\n'
    )
    prod = EnvContext(load(config), "prod", ProcessRunner(), Console())
    values_before = world.prod_values()
    with prod.locked("test: another run holds prod", 10):
        child = spawn(world, "promote", "release-1.0.0", "--lock-timeout", "120")
        time.sleep(max(0.0, (opens - datetime.now(UTC)).total_seconds()) + 1)  # the window opens during the wait
    out, err = child.communicate(timeout=120)
    assert child.returncode == 4, err
    assert "v2 launch" in json.loads(out)["error"]["message"]
    assert world.prod_values() == values_before and world.tag_digest("release-1.0.0") is None
    assert world.run("history", "prod")[1]["entries"] == [], "nothing recorded: no override was given"


def test_no_deploy_then_promote_deploys_and_never_says_it_already_runs(unsoaked: PromotionWorld) -> None:
    world = unsoaked
    sha, digest = world.commit("feat: D", seed=441)
    assert world.run("deploy", "dev", "--image-tag", sha)[0] == 0
    git(world.repo, "tag", "-a", "release-1.0.0", "-m", "release-1.0.0")
    code, out, err = world.run("promote", "release-1.0.0", "--no-deploy")
    assert (code, out["outcome"]) == (0, "moved"), err
    assert world.pod_digests("prod") == [], "not deployed"
    [entry] = world.run("history", "prod")[1]["entries"]
    assert (entry["outcome"], entry["digest"]) == ("moved", digest)
    code, out, err = world.run("promote", "release-1.0.0")
    assert (code, out["outcome"]) == (0, "succeeded"), err
    assert set(world.pod_digests("prod")) == {digest}
    code, out, err = world.run("promote", "release-1.0.0")
    assert (code, out["outcome"]) == (0, "noop"), "now it runs there, healthy"


def test_a_deploy_queued_behind_a_promotion_never_rolls_prod_back(unsoaked: PromotionWorld) -> None:
    """The issue's sequence: a queued `deploy prod` chose release-0.4.0 before it waited for the lock, ran right
    after `promote release-0.5.0` finished, and rolled prod back to 0.4.0 (exit 0)."""
    world = unsoaked
    sha_old, old = world.commit("feat: 0.4.0", seed=451)
    assert world.run("deploy", "dev", "--image-tag", sha_old)[0] == 0
    git(world.repo, "tag", "-a", "release-0.4.0", "-m", "release-0.4.0")
    assert world.run("promote", "release-0.4.0")[0] == 0
    sha_new, new = world.commit("feat: 0.5.0", seed=452)
    assert world.run("deploy", "dev", "--image-tag", sha_new)[0] == 0
    git(world.repo, "tag", "-a", "release-0.5.0", "-m", "release-0.5.0")
    # The test holds prod's lock until the promotion, then the deploy, wait in its queue (served in arrival order):
    # the deploy reads what prod should run (0.4.0) before the promotion changes it, on a machine of any load.
    holder = lock.EnvironmentLock(
        "prod", BUCKET, boto3.client("s3", endpoint_url=world.lab.moto_url, region_name="us-east-1")
    )
    with holder.hold("the test holds prod until both runs wait for it", timeout=0):
        promotion = spawn(world, "promote", "release-0.5.0")
        until(lambda: len(_queue_tickets(world, "prod")) == 1, 120, "the promotion to wait in prod's lock queue")
        queued = spawn(world, "deploy", "prod", "--lock-timeout", "180")  # chooses 0.4.0's digest, then waits
        until(lambda: len(_queue_tickets(world, "prod")) == 2, 120, "the deploy to wait behind it")
    out, err = promotion.communicate(timeout=180)
    assert promotion.returncode == 0, err
    out, err = queued.communicate(timeout=180)
    assert queued.returncode == 4, err
    message = json.loads(out)["error"]["message"]
    assert "prod changed while this run waited for its lock" in message and f"api: {old} -> {new}" in message
    assert set(world.pod_digests("prod")) == {new}, "prod still runs 0.5.0"
    code, status, err = world.run("status", "prod")
    assert code == 0, err
