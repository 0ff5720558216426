"""Attacks from issue 13, against the lab with real processes and real signals: concurrent promotions,
a downgrade racing a promotion, SIGTERM and kill -9 in the middle of a rollout. Each asserts the
invariant, not just the exit code: one helm revision and one ledger entry per promotion, every helm
revision deployctl made is in the ledger, the lock is never left held by a run that stopped cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
import yaml

from tests.lab.promotion_world import PromotionWorld
from tests.lab.world import git, wait_for

pytestmark = pytest.mark.lab


def measure(line: str) -> None:
    os.write(2, f"\n[measure] {line}\n".encode())


def spawn(world: PromotionWorld, *args: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "deployctl", "--config", str(world.repo / "pyproject.toml"), "-o", "json", *args]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=world.repo)


def helm_history(world: PromotionWorld, env: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [
            "helm",
            "--kubeconfig",
            str(world.lab.kubeconfig),
            "-n",
            f"{world.namespace}-{env}",
            "history",
            "api",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return list(json.loads(result.stdout)) if result.returncode == 0 else []


def ledger(world: PromotionWorld, env: str) -> list[dict[str, Any]]:
    code, out, err = world.run("history", env, "--limit", "100")
    assert code == 0, err
    entries: list[dict[str, Any]] = out["entries"]
    return entries


@pytest.fixture
def world(promotion_world: PromotionWorld) -> PromotionWorld:
    return promotion_world


def test_concurrent_promotions_of_one_release_make_one_revision_and_one_entry(world: PromotionWorld) -> None:
    sha, digest = world.commit("feat: D", seed=401)
    assert world.run("deploy", "dev", "--image-tag", sha)[0] == 0
    git(world.repo, "tag", "-a", "release-1.0.0", "-m", "release-1.0.0")
    started = time.monotonic()
    runs = [spawn(world, "promote", "release-1.0.0") for _ in range(3)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in runs]
    measure(f"3 concurrent promotions of one release: {time.monotonic() - started:.1f}s")
    for code, _, err in results:
        assert code == 0, err
    outcomes = sorted(json.loads(out)["outcome"] for _, out, _ in results)
    assert outcomes == ["noop", "noop", "succeeded"]
    assert [r["revision"] for r in helm_history(world, "prod")] == [1], "one helm revision"
    judged = [e for e in ledger(world, "prod") if e["action"] == "promote" and e["outcome"] != "started"]
    assert [(e["outcome"], e["digest"]) for e in judged] == [("succeeded", digest)], "one ledger entry"
    assert world.pod_digests("prod") == [digest] * 3, "prod's HPA (minReplicas 3) was waited for"


def test_a_downgrade_racing_a_promotion_is_refused_under_the_lock(world: PromotionWorld) -> None:
    sha_old, digest_old = world.commit("feat: old", seed=411)
    assert world.run("deploy", "dev", "--image-tag", sha_old)[0] == 0
    git(world.repo, "tag", "-a", "release-0.2.1", "-m", "release-0.2.1")
    sha_new, digest_new = world.commit("feat: new", seed=412)
    assert world.run("deploy", "dev", "--image-tag", sha_new)[0] == 0
    git(world.repo, "tag", "-a", "release-0.3.0", "-m", "release-0.3.0")
    newer = spawn(world, "promote", "release-0.3.0")
    time.sleep(0.4)  # the attack: alone, each passes its gates; judged before the lock, both did
    older = spawn(world, "promote", "release-0.2.1")
    (code_new, out_new, err_new), (code_old, _, err_old) = [
        (p.wait(timeout=300), *p.communicate()) for p in (newer, older)
    ]
    assert code_new == 0, err_new
    assert json.loads(out_new)["outcome"] == "succeeded"
    assert code_old == 4, err_old
    assert "0.2.1 is not newer than 0.3.0" in err_old
    assert world.pod_digests("prod") == [digest_new] * 3, "prod's HPA (minReplicas 3) was waited for"
    assert digest_old not in {e["digest"] for e in ledger(world, "prod")}


def unschedulable(world: PromotionWorld) -> None:
    """dev's api pods can never be scheduled and deployctl is told to wait for them (a long scheduling grace):
    the rollout watch runs until its timeout, or a signal."""
    values = world.repo / "values-dev.yaml"
    doc = yaml.safe_load(values.read_text())
    doc["api"]["nodeSelector"] = {"deployctl.dev/no-such-node": "true"}
    doc["api"]["podAnnotations"] = {"deployctl.dev/schedule-grace-seconds": "3600"}
    values.write_text(yaml.safe_dump(doc))


def schedulable(world: PromotionWorld) -> None:
    values = world.repo / "values-dev.yaml"
    doc = yaml.safe_load(values.read_text())
    for key in ("nodeSelector", "podAnnotations"):
        doc["api"].pop(key)
    values.write_text(yaml.safe_dump(doc))


def test_sigterm_mid_rollout_exits_130_releases_the_lock_and_records_it(world: PromotionWorld) -> None:
    sha, _ = world.commit("feat: H", seed=421)
    unschedulable(world)
    proc = spawn(world, "deploy", "dev", "--image-tag", sha)
    wait_for(proc, "watching the rollout of api")
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=60)
    measure(f"SIGTERM mid-rollout: exit {code} after {time.monotonic() - sent:.2f}s")
    assert code == 130, proc.communicate()[1]
    code, out, _ = world.run("lock", "status", "dev")
    assert (code, out["locked"]) == (0, False), "the lock was released"
    entries = ledger(world, "dev")
    (done,) = [e for e in entries if e["outcome"] != "started"]
    (intent,) = [e for e in entries if e["outcome"] == "started"]
    assert done["intent"] == intent["id"] and done["digest"] == intent["digest"]
    # helm had made its revision (the watch ran): it reached the cluster, so never `interrupted` (issue 25)
    assert (done["outcome"], done["message"]) == (
        "unknown",
        "interrupted after helm made revision 1; its rollout was never judged",
    )


def test_kill_9_mid_rollout_is_settled_by_the_next_deploy(world: PromotionWorld) -> None:
    sha, digest = world.commit("feat: K", seed=431)
    unschedulable(world)
    proc = spawn(world, "deploy", "dev", "--image-tag", sha)
    wait_for(proc, "watching the rollout of api")
    proc.kill()  # nothing can be written: the intent stays open and the lock stays held by a dead pid
    proc.wait(timeout=30)
    code, out, _ = world.run("status", "dev")
    assert any("no outcome yet" in line for line in out["apps"][0]["unfinished"])

    schedulable(world)
    code, out, err = world.run("deploy", "dev", "--image-tag", sha)
    assert code == 0, err
    assert "took over a stale lock of dev" in err, "the dead run's lock: same host, pid gone"
    assert f"an earlier deploy of {digest}" in err and "did not finish" in err
    entries = ledger(world, "dev")
    (settled,) = [e for e in entries if e["outcome"] == "unknown"]
    assert "helm revision 1" in settled["message"]
    # Every helm revision deployctl made is in the ledger: each description names its intent, each intent
    # has an outcome.
    intents = {e["id"] for e in entries if e["outcome"] == "started"}
    completed = {e["intent"] for e in entries if e.get("intent")}
    revisions = helm_history(world, "dev")
    assert len(revisions) == 2
    for revision in revisions:
        named = revision["description"].rsplit("(intent ", 1)[1].rstrip(")")
        assert named in intents and named in completed, revision
