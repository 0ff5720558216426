"""Re-running what already runs changes nothing (issue 24, section 4): no helm revision, no restarted pod, no re-run
hook, and the commit kept. Real helm 4, a real control plane with kwok nodes, a real registry, moto S3 for the lock
and the ledgers, a real git repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deployctl.sandbox.lab import Lab
from tests.lab.deploy_world import World
from tests.lab.test_promotion_evidence import World as PromoteWorld
from tests.lab.test_promotion_evidence import git, make_world

pytestmark = pytest.mark.lab


def uids(pods: list[dict[str, Any]]) -> set[str]:
    return {p["metadata"]["uid"] for p in pods if not p["metadata"].get("deletionTimestamp")}


def test_a_redeploy_of_what_runs_makes_no_revision_and_restarts_nothing(deploy_world: World) -> None:
    w = deploy_world
    digest = w.push("api", w.head, seed=2451)
    code, out, err = w.run("deploy", "dev")
    assert code == 0, err
    assert (out["apps"][0]["outcome"], out["apps"][0]["revision"]) == ("succeeded", 1)
    before = uids(w.pods())
    assert before

    code, out, err = w.run("deploy", "dev")
    assert code == 0, err
    [app] = out["apps"]
    assert (app["outcome"], app["revision"], app["image"]["digest"], app["git_sha"]) == (
        "unchanged",
        1,
        digest,
        w.head,
    )
    assert app["message"].startswith(f"unchanged: api already runs {digest} (revision 1), healthy")
    assert w.revisions() == [1], "no helm revision"
    assert uids(w.pods()) == before, "no pod restarted"
    entries = w.ledger()
    assert [(e.action, e.outcome, e.verdict, e.digest) for e in entries] == [
        ("deploy", "unchanged", "healthy", digest),
        ("deploy", "succeeded", "healthy", digest),
    ]
    assert entries[0].release == "api@1" and entries[0].commit == w.head
    assert len(w.intents()) == 1, "nothing was about to change: no intent"

    w.capsys.readouterr()
    from deployctl.cli.main import main

    assert main(["--config", str(w.config()), "deploy", "dev"]) == 0
    text = w.capsys.readouterr().out
    assert "unchanged: api in dev already runs it (release api revision 1" in text and "no helm revision" in text
    code, out, _ = w.run("history", "dev")
    assert [e["outcome"] for e in out["entries"] if e["outcome"] != "started"][:2] == ["unchanged", "unchanged"]

    # a value changes: a new revision
    values = w.repo / "values-dev.yaml"
    values.write_text(values.read_text().replace("LOG_LEVEL: debug", "LOG_LEVEL: info"))
    code, out, err = w.run("deploy", "dev")
    assert code == 0, err
    assert (out["apps"][0]["outcome"], out["apps"][0]["revision"]) == ("succeeded", 2)
    assert w.revisions() == [1, 2]


def test_a_redeploy_of_what_runs_unhealthy_fails_without_helm(deploy_world: World, lab: Lab) -> None:
    """Redeploying the same thing does not fix it: exit 1 with the health summary, no helm revision, recorded."""
    w = deploy_world
    digest = w.push("api", "v1", seed=2453)
    assert w.run("deploy", "dev", "--image-tag", "v1")[0] == 0
    lab.mark_image(digest, "crashloop")  # the bytes crash from now on: a restarted pod never becomes ready
    w.kubectl("delete", "pods", "--all", "--wait=false")
    code, out, err = w.run("deploy", "dev", "--image-tag", "v1")
    assert code == 1, err
    assert (
        f"unchanged: api already runs {digest} (revision 1) in dev, no helm revision made, but it is not healthy" in err
    )
    assert "redeploying what runs changes nothing" in err and "roll forward" in err
    assert out["error"]["revision"] == 1 and out["error"]["reasons"]
    assert w.revisions() == [1]
    [last, *_] = w.ledger()
    assert (last.action, last.outcome, last.verdict, last.digest) == ("deploy", "unchanged", "failed", digest)


def test_a_redeploy_restores_what_was_changed_by_hand(deploy_world: World) -> None:
    """Drift is no reason to skip helm: a Deployment scaled by hand is restored by the next deploy."""
    w = deploy_world
    w.push("api", "v1", seed=2452)
    assert w.run("deploy", "dev", "--image-tag", "v1")[0] == 0
    w.kubectl("scale", "deployment/api", "--replicas=3")
    code, out, err = w.run("deploy", "dev", "--image-tag", "v1")
    assert code == 0, err
    assert (out["apps"][0]["outcome"], out["apps"][0]["revision"]) == ("succeeded", 2)
    code, out, _ = w.run("diff", "dev", "--detailed-exitcode")
    assert code == 0, out


@pytest.fixture
def promoted(
    tmp_path: Path,
    lab: Lab,
    registry: str,
    aws_reset: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> PromoteWorld:
    return make_world(tmp_path, lab, registry, aws_reset, monkeypatch, capsys)


def prod_pods(w: PromoteWorld) -> list[dict[str, Any]]:
    pods: list[dict[str, Any]] = w.kubectl_json("prod", "get", "pods")["items"]
    return pods


def test_a_redeploy_of_what_prod_runs_keeps_its_commit_and_changes_nothing(promoted: PromoteWorld) -> None:
    w = promoted
    values = w.repo / "values-prod.yaml"
    sha, digest = w.commit("feat: A", seed=2461)
    assert w.run("deploy", "dev", "--image-tag", sha)[0] == 0
    git(w.repo, "tag", "-a", "release-1.0.0", "-m", "release-1.0.0", sha)
    code, out, err = w.run("promote", "release-1.0.0")
    assert code == 0, err
    code, status, _ = w.run("status", "prod")
    assert code == 0 and status["apps"][0]["git_sha"] == sha
    before = uids(prod_pods(w))
    revisions = w.kubectl_json("prod", "get", "secrets", "-l", "owner=helm,name=api")["items"]

    code, out, err = w.run("deploy", "prod")
    assert code == 0, err
    [app] = out["apps"]
    assert (app["outcome"], app["revision"], app["git_sha"]) == ("unchanged", 1, sha)
    after = w.kubectl_json("prod", "get", "secrets", "-l", "owner=helm,name=api")["items"]
    assert len(after) == len(revisions) == 1, "no helm revision"
    assert uids(prod_pods(w)) == before, "no pod restarted"
    code, status, _ = w.run("status", "prod")
    assert code == 0 and status["apps"][0]["git_sha"] == sha, "status still shows the commit"
    code, history, _ = w.run("history", "prod")
    judged = [(e["action"], e["outcome"]) for e in history["entries"] if e["outcome"] != "started"]
    assert judged == [("deploy", "unchanged"), ("promote", "succeeded")], "an unchanged redeploy is no promotion"

    # a value changes: a new revision, which keeps the commit the promotion recorded
    values.write_text(values.read_text().replace("LOG_LEVEL: info", "LOG_LEVEL: warn"))
    code, out, err = w.run("deploy", "prod")
    assert code == 0, err
    [app] = out["apps"]
    assert (app["outcome"], app["revision"], app["git_sha"]) == ("succeeded", 2, sha)
    deployment = w.kubectl_json("prod", "get", "deployment", "api")
    assert deployment["spec"]["template"]["metadata"]["annotations"]["deployctl.dev/git-sha"] == sha
    code, status, _ = w.run("status", "prod")
    assert code == 0 and status["apps"][0]["git_sha"] == sha
