"""The gate that matters most: the digest was proven in the source environment (a healthy verdict, no failure since,
the soak time run, healthy there now)."""

from __future__ import annotations

import math
from datetime import timedelta

from deployctl.ledger.entry import Entry
from deployctl.promotion.evidence import Evidence, duration, failure_of, run_of
from deployctl.promotion.facts import VERIFIED, Facts, Gate
from deployctl.promotion.request import SKIP_DEV_CHECK


def verified_in_source(facts: Facts, *, done: bool, skip: bool) -> Gate:
    """The digest rolled out healthy in the source (a verdict deployctl recorded), no later rollout of it
    failed there, it ran there for the soak time (its latest healthy period: ``evidence``), and, when the source
    still runs it, it is healthy there now (judged live: a crash after its healthy verdict records nothing).

    Without evidence (never deployed there, no verdict, short of the soak) ``--skip-dev-check --reason`` may
    promote it anyway (a hotfix that cannot wait). A recorded failure is evidence against it: no flag skips
    that; the way on is a fix and a new release (roll forward), or, when the source itself was at fault, a
    healthy rollout of the digest there after the failure."""
    digest, source, evidence = facts.source_digest, facts.source_env, facts.evidence
    if digest is None or evidence is None:  # image-built already refuses
        return Gate(VERIFIED, True, "not checked: no image", SKIP_DEV_CHECK)
    if done:
        return Gate(VERIFIED, True, f"{digest} already runs in {facts.target_env}", SKIP_DEV_CHECK)
    # What the source's ledger proves cannot be trusted; its retained entries were read (a hidden failure included)
    untrusted = (
        f"the ledger of {source} was tampered with or cannot be read, so it proves nothing: "
        f"{'; '.join(facts.source_ledger)} (`deployctl history {source}`; README: the ledger)"
        if facts.source_ledger
        else ""
    )
    failure = evidence.failure
    if failure is not None:
        also = f"; and {untrusted}" if untrusted else ""
        return Gate(VERIFIED, False, _failed(facts, failure) + also, fix=_roll_forward(facts, failure))
    if facts.live_runs and facts.live_problems:  # it still runs there, and is not healthy now: evidence against it
        now = "; ".join(facts.live_problems)
        return Gate(
            VERIFIED, False, f"{digest} runs in {source} but is not healthy now: {now}", fix=_roll_forward(facts)
        )
    if untrusted:  # no failure read: a look, then the recorded override, is the way on
        return Gate(VERIFIED, False, f"{untrusted}; or pass {SKIP_DEV_CHECK} --reason TEXT", SKIP_DEV_CHECK, skip)
    problem = _no_proof(facts, evidence)
    if problem is None:
        now = "; healthy there now" if facts.live_runs else ""
        return Gate(VERIFIED, True, f"{digest} {evidence.describe()}{now}", SKIP_DEV_CHECK)
    if facts.not_counted:
        problem += f" (not counted: {'; '.join(facts.not_counted)})"
    return Gate(VERIFIED, False, f"{problem}; or pass {SKIP_DEV_CHECK} --reason TEXT", SKIP_DEV_CHECK, skip)


def _no_proof(facts: Facts, evidence: Evidence) -> str | None:
    """Why the source's ledger does not prove the digest (no failure against it, only a lack): None when it does."""
    digest, source = facts.source_digest, facts.source_env
    if evidence.running and facts.live_runs is False:  # the ledger's open period ended where nobody recorded it
        return (
            f"{source}'s ledger says {digest} still runs there, but {'; '.join(facts.live_elsewhere)}: a rollout "
            "deployctl did not record replaced it, so how long it ran healthy cannot be proven"
        )
    if evidence.verified is None and evidence.missing:  # a source with several clusters
        return f"{evidence.describe()} (`deployctl history {source}`); deploy it to {source} first"
    if evidence.verified is None and evidence.unverified is not None:  # checks configured, never run (or passed)
        return evidence.unverified_problem(facts.app)
    if evidence.verified is None and evidence.last_rollout is None:
        return (
            f"{digest} was never deployed to {source} (no rollout of it in its ledger: `deployctl history {source}`); "
            f"deploy it to {source} first"
        )
    if evidence.verified is None:
        latest = evidence.last_rollout
        tried = f" (its latest rollout there: {latest.outcome} at {latest.at} by {run_of(latest)})" if latest else ""
        return f"{digest} has no healthy rollout in {source} recorded by deployctl{tried}; deploy it to {source} again"
    if evidence.ran_for < facts.soak:
        return (
            f"{digest} has run healthy in {source} for {duration(evidence.ran_for)} of the {duration(facts.soak)} "
            f"required (promote_soak_minutes: its latest healthy period, a failure starts it again); "
            f"{duration(_rounded_up(facts.soak - evidence.ran_for))} to go"
        )
    return None


def _failed(facts: Facts, failure: Entry) -> str:
    """A digest that failed in the source: whether it ever ran healthy there, then when, which run, which verdict
    and the failure's first line."""
    digest, source, evidence = facts.source_digest, facts.source_env, facts.evidence
    where = f"{source} (cluster {failure.cluster})" if failure.cluster else source
    before = ""  # several clusters: it may have run healthy in one and failed in another
    if evidence is not None and not evidence.clusters:
        healthy = evidence.verified
        before = (
            " and never rolled out healthy there"
            if healthy is None
            else f" after its healthy rollout at {healthy.at} by {run_of(healthy)}"
        )
    return f"{digest} failed in {where}{before}: {failure_of(failure)}"


def _roll_forward(facts: Facts, failure: Entry | None = None) -> str:
    """The refusal's hint for a digest that failed: a new release of a fix (never a flag that skips the gate)."""
    source = facts.source_env
    where = f"{source} (cluster {failure.cluster})" if failure is not None and failure.cluster else source
    return (
        f"roll forward: fix it on {facts.main_ref.removeprefix('origin/')}, and once the fix runs healthy in {source}, "
        f"tag a new release at its commit and promote that (if {where} was at fault, not the image: a healthy "
        f"rollout of this digest in {where} after the failure counts)"
    )


def _rounded_up(span: timedelta) -> timedelta:
    return timedelta(seconds=math.ceil(span.total_seconds()))
