"""The promotion gate holds over time (issue 25 §1): a digest the source still runs is judged there live, with the
same definition of healthy as ``status``; the ledger's word that it still runs is checked against the cluster.
The clusters are the in-memory fakes (tests/unit/fakes.py): the lab test of the same sequence is in
tests/lab/test_gate_over_time.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployctl.app import promote as promote_app
from deployctl.core.errors import ExitCode, PolicyError
from deployctl.promotion.request import PromoteRequest
from deployctl.rollout.states import Verdict
from tests.unit.fakes import FakeContext
from tests.unit.test_use_cases import DIGEST, promote_world, repo  # noqa: F401 (repo: a fixture)


def test_a_digest_that_crashed_after_its_healthy_verdict_is_refused_naming_the_workload(
    repo: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    contexts, s3, endpoints = promote_world(repo, monkeypatch)
    dev = contexts["dev"]
    assert isinstance(dev, FakeContext)
    # dev's pods crash after the healthy verdict: nothing is recorded in dev's ledger
    dev.fake_cluster.verdict = Verdict("failed", "pod api-1 container api: CrashLoopBackOff", reason="CrashLoopBackOff")
    values_before = (repo / "values-prod.yaml").read_text()
    for request in (PromoteRequest("release-1.0.0", dry_run=True), PromoteRequest("release-1.0.0")):
        with pytest.raises(PolicyError) as caught:
            promote_app.promote(contexts, request)
        assert caught.value.exit_code == ExitCode.REFUSED
        message = caught.value.message
        assert f"{DIGEST} runs in dev but is not healthy now: dev: deployment api: rollout failed" in message
        assert "CrashLoopBackOff" in message
        assert caught.value.hint is not None and "--skip-dev-check" not in caught.value.hint
    with pytest.raises(PolicyError):  # a flag that skips missing proof does not skip evidence against it
        promote_app.promote(contexts, PromoteRequest("release-1.0.0", skip_dev_check=True, reason="hotfix"))
    assert endpoints.transfers == [] and (repo / "values-prod.yaml").read_text() == values_before
    assert s3.held_lock("prod") is None


def test_healthy_now_is_said_in_the_gate(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    contexts, _, _ = promote_world(repo, monkeypatch)
    plan, *_ = promote_app.plan(contexts, PromoteRequest("release-1.0.0", dry_run=True))
    gate = next(g for g in plan.gates if g.name == "verified-in-source")
    assert gate.ok and "still runs there" in gate.message and "healthy there now" in gate.message


def test_the_ledgers_open_period_is_checked_against_what_the_source_runs(
    repo: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """dev's ledger says the digest still runs, but someone replaced it outside deployctl: its healthy time cannot
    be proven (a lack of proof: the override may pass it, with a reason)."""
    contexts, _, _ = promote_world(repo, monkeypatch)
    dev = contexts["dev"]
    assert isinstance(dev, FakeContext)
    other = "sha256:" + "f" * 64
    dev.fake_cluster.desired["api"] = other
    with pytest.raises(PolicyError) as caught:
        promote_app.promote(contexts, PromoteRequest("release-1.0.0"))
    assert f"dev's ledger says {DIGEST} still runs there, but dev runs {other}" in caught.value.message
    result = promote_app.promote(contexts, PromoteRequest("release-1.0.0", skip_dev_check=True, reason="hand fix"))
    assert result.outcome == "succeeded"
