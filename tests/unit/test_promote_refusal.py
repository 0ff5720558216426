"""What the dev gate says when it refuses (issue 24): a digest never deployed to dev, one that failed there and never
ran healthy, one that ran healthy and failed later, each judged from a real ledger history (``evidence_of``) and
refused with exit 4. A failure says when, which run, the verdict and its first line, and never offers
``--skip-dev-check`` (no flag skips a failure: roll forward); a missing proof still may be skipped, with a reason
that is recorded and announced."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from deployctl.app import promote as promote_app
from deployctl.app.deploy import deploy
from deployctl.core.errors import ExitCode, OperationError, PolicyError
from deployctl.ledger.entry import Entry, Outcome
from deployctl.promotion import gates as promotion
from deployctl.promotion.evidence import evidence_of, fleet_evidence
from deployctl.promotion.request import PromoteRequest
from deployctl.rollout.states import Verdict
from tests import values_files
from tests.unit.fakes import FakeContext
from tests.unit.test_promote_plan import facts
from tests.unit.test_use_cases import CONFIG, DIGEST, promote_world

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
CRASH = "pod api-7d9 container api: CrashLoopBackOff (exit 3, restarted 4 times)"


def rollout(digest: str, hour: int, outcome: Outcome, *, run: str | None = None, entry_id: str, **extra: Any) -> Entry:
    verdict = {"succeeded": "healthy", "failed": "failed"}.get(outcome)
    return Entry(
        env="dev", app="api", action="deploy", outcome=outcome, verdict=verdict, digest=digest,
        time=f"2026-11-29T{hour:02}:00:00+00:00", ci_run_id=run, id=entry_id, actor="alice", **extra,
    )  # fmt: skip


HEALTHY = rollout(A, 9, "succeeded", run="101", entry_id="e1")
FAILED = rollout(
    A, 10, "failed", run="102", entry_id="e2", message=CRASH + "\n  event: Back-off restarting\n  log: boom"
)
OTHER = rollout(B, 8, "succeeded", run="100", entry_id="e0")


def refused(history: list[Entry], *, skip: bool = False) -> PolicyError:
    evidence = evidence_of(list(reversed(history)), env="dev", app="api", digest=A, now=NOW)
    gates = promotion.judge(facts(evidence=evidence, app="api"), skip_dev_check=skip)
    error = promotion.refusal(gates)
    assert error is not None, history
    assert error.exit_code == ExitCode.REFUSED
    return error


def test_never_deployed_to_dev_says_deploy_it_there_first_and_may_be_skipped() -> None:
    error = refused([OTHER])
    assert error.message == (
        f"api: verified-in-source: {A} was never deployed to dev (no rollout of it in its ledger: "
        "`deployctl history dev`); deploy it to dev first; or pass --skip-dev-check --reason TEXT"
    )
    assert error.hint == "fix the cause, or override with --skip-dev-check --reason TEXT (recorded in history)"
    gates = promotion.judge(
        facts(evidence=evidence_of([OTHER], env="dev", app="api", digest=A, now=NOW)), skip_dev_check=True
    )
    assert promotion.refusal(gates) is None and promotion.used("--skip-dev-check", gates)


def test_failed_in_dev_and_never_healthy_says_when_which_run_and_the_failure() -> None:
    error = refused([OTHER, FAILED])
    assert error.message == (
        f"api: verified-in-source: {A} failed in dev and never rolled out healthy there: "
        f"at 2026-11-29T10:00:00+00:00 by CI run 102 (entry e2), verdict failed: {CRASH}"
    )
    assert "Back-off" not in error.message, "the failure's first line only"
    assert "deploy it to dev first" not in error.message
    assert error.hint is not None and error.hint.startswith("roll forward: fix it on main, and once the fix runs")
    assert "tag a new release at its commit" in error.hint
    assert "--skip-dev-check" not in error.message + error.hint


def test_healthy_then_failed_later_names_both_rollouts() -> None:
    error = refused([HEALTHY, FAILED])
    assert error.message == (
        f"api: verified-in-source: {A} failed in dev after its healthy rollout at 2026-11-29T09:00:00+00:00 by CI run "
        f"101 (entry e1): at 2026-11-29T10:00:00+00:00 by CI run 102 (entry e2), verdict failed: {CRASH}"
    )
    assert error.hint is not None and error.hint.startswith("roll forward: ")
    assert "--skip-dev-check" not in error.message + error.hint


def test_a_failure_without_a_ci_run_names_the_actor() -> None:
    error = refused([replace(FAILED, ci_run_id=None)])
    assert "at 2026-11-29T10:00:00+00:00 by alice (entry e2), verdict failed: " in error.message


@pytest.mark.parametrize("history", [[OTHER, FAILED], [HEALTHY, FAILED]], ids=["never healthy", "healthy, then failed"])
def test_skip_dev_check_does_not_skip_a_failure(history: list[Entry]) -> None:
    error = refused(history, skip=True)
    gates: list[dict[str, Any]] = error.details["gates"]  # type: ignore[assignment]
    (gate,) = [g for g in gates if g["name"] == "verified-in-source"]
    assert (gate["ok"], gate["overridden"], gate["override"]) == (False, False, None)


def test_rolled_out_without_a_verdict_says_so_and_may_be_skipped() -> None:
    error = refused([OTHER, rollout(A, 10, "interrupted", run="103", entry_id="e3")])
    assert (
        f"{A} has no healthy rollout in dev recorded by deployctl (its latest rollout there: interrupted at "
        "2026-11-29T10:00:00+00:00 by CI run 103 (entry e3)); deploy it to dev again; or pass --skip-dev-check"
    ) in error.message


def test_several_clusters_a_failure_in_the_first_wave_is_a_failure_not_a_missing_rollout() -> None:
    history = [replace(FAILED, cluster="a"), replace(HEALTHY, cluster="b")]
    evidence = fleet_evidence(history, env="dev", app="api", digest=A, now=NOW, first_wave=("a", "b"))
    error = promotion.refusal(promotion.judge(facts(evidence=evidence, app="api"), skip_dev_check=True))
    assert error is not None and error.exit_code == ExitCode.REFUSED
    assert error.message == (
        f"api: verified-in-source: {A} failed in dev (cluster a): "
        f"at 2026-11-29T10:00:00+00:00 by CI run 102 (entry e2), verdict failed: {CRASH}"
    )
    assert (
        error.hint is not None and "a healthy rollout of this digest in dev (cluster a) after the failure" in error.hint
    )


def test_healthy_again_after_the_failure_is_proof() -> None:
    history = [FAILED, rollout(A, 11, "succeeded", run="104", entry_id="e4")]
    evidence = evidence_of(history, env="dev", app="api", digest=A, now=NOW)
    assert promotion.refusal(promotion.judge(facts(evidence=evidence))) is None


# --------------------------------------------------------------------------- through the use case

HOOK = "DEPLOYCTL_TEST_HOOK"


@pytest.fixture
def posted(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The webhook's deliveries (a real receiver: tests/lab/test_notify.py)."""
    found: list[dict[str, Any]] = []

    def post(url: str, body: bytes, timeout: float) -> int:
        del url, timeout
        found.append(json.loads(body))
        return 200

    monkeypatch.setenv(HOOK, "https://hooks.example/T0/B0")
    monkeypatch.setattr("deployctl.notify.send._post", post)
    return found


def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, FakeContext, FakeContext]:
    """tests/unit/test_use_cases.py's promotion (its digest ran healthy in dev just now), prod soaking for an hour
    and announcing to a webhook."""
    (tmp_path / "pyproject.toml").write_text(
        CONFIG.replace("promote_soak_minutes = 0", "promote_soak_minutes = 60")
        + f'notify = [{{ url_env = "{HOOK}" }}]\n'
    )
    for name in ("values-dev.yaml", "values-prod.yaml"):
        (tmp_path / name).write_text(values_files.reference(name))
    contexts, _, _ = promote_world(tmp_path, monkeypatch)
    dev, prod = contexts["dev"], contexts["prod"]
    assert isinstance(dev, FakeContext) and isinstance(prod, FakeContext)
    return contexts, dev, prod


def test_a_digest_that_failed_in_dev_is_refused_by_promote_and_its_dry_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, posted: list[dict[str, Any]]
) -> None:
    contexts, dev, prod = world(tmp_path, monkeypatch)
    dev.fake_cluster.verdict = Verdict("failed", CRASH + "\n  log: boom", reason="CrashLoopBackOff")
    with pytest.raises(OperationError):
        deploy(dev, digest=DIGEST)  # the same digest again: this time it crashes
    (failure,) = [e for e in dev.entries() if e.outcome == "failed"]
    for dry_run in (True, False):
        request = PromoteRequest("release-1.0.0", dry_run=dry_run, skip_dev_check=True, reason="hotfix")
        with pytest.raises(PolicyError) as caught:
            promote_app.promote(contexts, request)
        error = caught.value
        assert error.exit_code == ExitCode.REFUSED
        assert f"{DIGEST} failed in dev after its healthy rollout at " in error.message
        assert f": at {failure.at} by {failure.actor} (entry {failure.id}), verdict failed: {CRASH}" in error.message
        assert error.hint is not None and error.hint.startswith("roll forward: ")
        assert "--skip-dev-check" not in error.message + error.hint
    assert prod.entries() == [] and prod.fake_cluster.calls == []
    for event in posted:  # the dry run's refusal too
        assert (event["event"], event["verdict"]) == ("promote-refused", "refused")
        assert event["failure"].startswith("api: verified-in-source: ") and "failed in dev" in event["failure"]


def test_skip_dev_check_is_recorded_in_the_ledger_and_announced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, posted: list[dict[str, Any]]
) -> None:
    contexts, _, prod = world(tmp_path, monkeypatch)
    with pytest.raises(PolicyError, match="of the 60 min required"):
        promote_app.promote(contexts, PromoteRequest("release-1.0.0"))
    request = PromoteRequest("release-1.0.0", skip_dev_check=True, reason="INC-9: the fix for the outage")
    assert promote_app.promote(contexts, request).outcome == "succeeded"
    done = next(e for e in prod.entries() if e.outcome == "succeeded")
    assert [(o.flag, o.reason) for o in done.overrides] == [("--skip-dev-check", "INC-9: the fix for the outage")]
    refusal, promoted = posted
    assert refusal["event"] == "promote-refused"
    assert promoted["event"] == "promote-succeeded"
    assert promoted["summary"] == "release-1.0.0 promoted to prod (overriding --skip-dev-check)"
    assert promoted["reason"] == "INC-9: the fix for the outage"
