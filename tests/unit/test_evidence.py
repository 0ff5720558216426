"""What a ledger proves about a digest (the promotion gate's input), as a table of histories."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from deployctl.ledger.entry import Entry, Outcome
from deployctl.promotion.evidence import evidence_of

D = "sha256:" + "d" * 64
E = "sha256:" + "e" * 64
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def at(minutes_ago: int) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat(timespec="milliseconds")


def rollout(
    digest: str, minutes_ago: int, outcome: Outcome = "succeeded", *, app: str = "api", action: str = "deploy"
) -> Entry:
    verdict = "healthy" if outcome == "succeeded" else "failed"
    return Entry(
        env="dev", app=app, action=action, outcome=outcome, verdict=verdict, digest=digest, time=at(minutes_ago)
    )


def unchanged(digest: str, minutes_ago: int, verdict: str = "healthy") -> Entry:
    """A deploy of what already ran: no helm revision, the release judged as it was."""
    return Entry(
        env="dev", app="api", action="deploy", outcome="unchanged", verdict=verdict, digest=digest, time=at(minutes_ago)
    )


# (case, entries oldest first, verified?, failed after?, minutes ran, still running?)
HISTORIES: list[tuple[str, list[Entry], bool, bool, int, bool]] = [
    ("nothing recorded", [], False, False, 0, False),
    ("healthy, still runs", [rollout(D, 60)], True, False, 60, True),
    ("busy trunk: E replaced D", [rollout(D, 60), rollout(E, 20)], True, False, 40, False),
    # issue 25: a failed E reached the cluster: D may no longer serve, its period ends there
    ("E failed: D's period ends", [rollout(D, 60), rollout(E, 20, "failed")], True, False, 40, False),
    ("E unknown ends D's period", [rollout(D, 60), rollout(E, 20, "unknown")], True, False, 40, False),
    ("E interrupted never reached the cluster", [rollout(D, 60), rollout(E, 20, "interrupted")], True, False, 60, True),
    ("D's own unjudged rollout ends it", [rollout(D, 60), rollout(D, 20, "unknown")], True, False, 40, False),
    ("D itself failed (spec names it, pods never ready)", [rollout(E, 90), rollout(D, 30, "failed")], False, False, 0, False),
    ("D failed after its healthy rollout", [rollout(D, 60), rollout(D, 10, "failed")], True, True, 50, False),
    ("failed, then healthy again", [rollout(D, 90, "failed"), rollout(D, 30)], True, False, 30, True),
    # issue 25: the soak is the latest continuous period; a failure resets it (the new period starts at zero)
    ("healthy, failed, healthy: a new period", [rollout(D, 100), rollout(D, 60, "failed"), rollout(D, 20)], True, False, 20, True),
    ("two healthy periods do not add up", [rollout(D, 100), rollout(E, 80), rollout(D, 30)], True, False, 30, True),
    ("a healthy redeploy does not restart it", [rollout(D, 100), rollout(D, 30)], True, False, 100, True),
    ("another app's rollouts do not count", [rollout(D, 60), rollout(E, 30, app="worker")], True, False, 60, True),
    (
        "a succeeded entry without a healthy verdict is no evidence",
        [Entry(env="dev", app="api", action="deploy", outcome="succeeded", digest=D, time=at(60))],
        False, False, 0, False,
    ),
    ("a promotion into the source counts", [rollout(D, 60, action="promote")], True, False, 60, True),
    ("a redeploy of D (unchanged) neither restarts nor ends its soak", [rollout(D, 60), unchanged(D, 10)], True, False, 60, True),
    ("a redeploy that finds D unhealthy is a failure", [rollout(D, 60), unchanged(D, 10, "failed")], True, True, 50, False),
    ("a redeploy finding E running ends D's period", [rollout(D, 60), unchanged(E, 20)], True, False, 40, False),
    ("a redeploy of D starts no period", [rollout(D, 90), rollout(E, 60), unchanged(D, 30)], True, False, 30, False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "entries", "verified", "failed", "minutes", "running"), HISTORIES, ids=[h[0] for h in HISTORIES]
)
def test_evidence(case: str, entries: list[Entry], verified: bool, failed: bool, minutes: int, running: bool) -> None:
    # the ledger answers newest first: order must not matter
    evidence = evidence_of(list(reversed(entries)), env="dev", app="api", digest=D, now=NOW)
    assert (evidence.verified is not None, evidence.failed_after is not None) == (verified, failed), case
    assert evidence.ran_for == timedelta(minutes=minutes), case
    assert evidence.running is running, case
    assert evidence.proven is (verified and not failed)


def test_what_a_ledger_says_of_a_digest_that_never_ran_healthy() -> None:
    """The gate tells these apart: never rolled out, failed (its latest failure), rolled out without a verdict."""
    never = evidence_of([rollout(E, 60)], env="dev", app="api", digest=D, now=NOW)
    assert (never.last_rollout, never.last_failure, never.failure) == (None, None, None)
    first, second = rollout(D, 60, "failed"), rollout(D, 30, "failed")
    failed = evidence_of([first, second], env="dev", app="api", digest=D, now=NOW)
    assert (failed.last_rollout, failed.last_failure, failed.failure) == (second, second, second)
    assert failed.describe().startswith(f"{D} failed in dev: at {second.time} by ")
    healed = evidence_of([first, rollout(D, 10)], env="dev", app="api", digest=D, now=NOW)
    assert (healed.last_failure, healed.failure) == (None, None)
    interrupted = rollout(D, 5, "interrupted")
    unjudged = evidence_of([interrupted], env="dev", app="api", digest=D, now=NOW)
    assert (unjudged.last_rollout, unjudged.failure) == (interrupted, None)


def test_a_rollout_of_another_digest_ends_the_period_from_its_intent_and_an_open_intent_too() -> None:
    d = rollout(D, 60)
    intent = Entry(env="dev", app="api", action="deploy", outcome="started", digest=E, time=at(40))
    settled = Entry(
        env="dev", app="api", action="deploy", outcome="unknown", digest=E, time=at(10), intent=intent.id
    )  # settled by a later run, 30 min after E's rollout began
    evidence = evidence_of([d, intent, settled], env="dev", app="api", digest=D, now=NOW)
    assert (evidence.ran_for, evidence.running) == (timedelta(minutes=20), False), "from E's intent, not its settling"
    # E's run died (or still runs): its open intent ends D's period from when it began
    evidence = evidence_of([d, intent], env="dev", app="api", digest=D, now=NOW)
    assert (evidence.ran_for, evidence.running) == (timedelta(minutes=20), False)
    # an intent of D itself completed healthy starts nothing new and ends nothing
    own = Entry(env="dev", app="api", action="deploy", outcome="started", digest=D, time=at(61))
    done = replace(d, intent=own.id)
    evidence = evidence_of([own, done], env="dev", app="api", digest=D, now=NOW)
    assert (evidence.ran_for, evidence.running) == (timedelta(minutes=60), True)
