"""What an environment's ledger proves about a digest, pure: when deployctl saw it roll out healthy
there, by which run, how long it ran, and whether a later rollout of it failed.

The promotion gate reads this instead of what the source environment's spec says this second:
a spec names a digest as soon as helm applied it, even when its pods never became ready; and a busy
trunk moves on, so a digest verified an hour ago may no longer run there and still be the release.

A source with several clusters (``fleet_evidence``): the digest must have rolled out healthy in every cluster of
the source's first wave (the wave every rollout passes first: the canary), and a failed rollout of it in any of
the source's clusters (after its healthy rollout there, or with none after it) refuses it; the soak counts the
shortest time it ran healthy in a first-wave cluster. Entries recorded before the environment had several
clusters name no cluster and count for none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from deployctl.ledger.entry import Entry
from deployctl.verification.model import checks_data, describe

ROLLOUTS = ("deploy", "promote")
VERIFY = "verify"  # ``deployctl verify``: the checks run again on what runs; it changes no pod


def healthy(entry: Entry, checks: bool = False) -> bool:
    """A rollout deployctl itself judged healthy from the cluster (see ``rollout.release_health``) whose verification
    did not fail, recorded by a writer whose clock agreed with S3's (a skewed entry is never counted as proof; a
    failure always is). Where the app has checks configured (``checks``), only one whose checks passed counts, or a
    passed ``deployctl verify`` of the digest: a healthy rollout whose checks never ran is not proof."""
    if entry.outcome != "succeeded" or entry.skewed or entry.verified in ("failed", "error", "unknown"):
        return False
    if entry.action == VERIFY:
        return entry.verified == "passed"
    return entry.action in ROLLOUTS and entry.verdict == "healthy" and (not checks or entry.verified == "passed")


def failed(entry: Entry) -> bool:
    """A rollout that failed, a redeploy of what ran (``unchanged``: no helm revision) that found it unhealthy, or a
    failed verification (a check failed: the digest does not work there)."""
    judged_unhealthy = entry.outcome == "unchanged" and entry.verdict == "failed"
    return entry.action in (*ROLLOUTS, VERIFY) and (entry.outcome == "failed" or judged_unhealthy)


def run_of(entry: Entry) -> str:
    """Who did it, as a reader can find it: the CI run, else the actor; plus the ledger entry id."""
    who = f"CI run {entry.ci_run_id}" if entry.ci_run_id else f"{entry.actor}"
    return f"{who} (entry {entry.id})"


def failure_of(entry: Entry, limit: int = 200) -> str:
    """A failed rollout as a reader can find and judge it: when, which run, the verdict, the failure's first line."""
    lines = [line.strip() for line in entry.message.splitlines() if line.strip()]
    first = lines[0] if lines else ""
    if len(first) > limit:
        first = first[: limit - 1] + "…"
    verdict = f"verdict {entry.verdict}" if entry.verdict else f"outcome {entry.outcome}, no verdict"
    return f"at {entry.at} by {run_of(entry)}, {verdict}" + (f": {first}" if first else "")


@dataclass(frozen=True)
class Evidence:
    env: str
    digest: str
    verified: Entry | None  # the latest healthy rollout of the digest
    failed_after: Entry | None  # the first failed rollout of the digest after it
    ran_for: timedelta  # total time it ran healthy there: from each healthy rollout until replaced, or now
    running: bool  # no healthy rollout of another digest since
    clusters: tuple[str, ...] = ()  # several source clusters: the first wave's, where it must have run healthy
    missing: tuple[str, ...] = ()  # the first-wave clusters without a healthy rollout of it
    # The latest failed rollout of the digest with no healthy rollout of it after (in its cluster), and its latest
    # rollout whatever the outcome (None: it was never rolled out there).
    last_failure: Entry | None = None
    last_rollout: Entry | None = None
    # The latest healthy rollout of the digest that is no proof because the app's checks never ran on it (checks
    # configured since, or never run there): the gate says so.
    unverified: Entry | None = None

    @property
    def proven(self) -> bool:
        return self.verified is not None and self.failed_after is None

    @property
    def failure(self) -> Entry | None:
        """The failed rollout that refuses the digest: the first after its healthy rollout, else (never healthy)
        its latest; None when no failure refuses it."""
        if self.failed_after is not None:
            return self.failed_after
        return self.last_failure if self.verified is None else None

    def describe(self) -> str:
        where = f"{self.env}'s first-wave clusters ({', '.join(self.clusters)})" if self.clusters else self.env
        if self.verified is None:
            failure = self.failure
            if failure is not None:
                return f"{self.digest} failed in {self.env}: {failure_of(failure)}; no healthy rollout of it in {where}"
            if self.last_rollout is None:
                return f"{self.digest} was never rolled out in {self.env}"
            missing = f" (none in {', '.join(self.missing)})" if self.missing else ""
            return f"no healthy rollout of {self.digest} in {where} is recorded{missing}"
        since = "still runs there" if self.running else "since replaced"
        how = "verified (deployctl verify)" if self.verified.action == VERIFY else "rolled out healthy"
        checks = f", {describe(self.verified.verified, self.verified.checks)}" if self.verified.verified else ""
        return (
            f"{how} in {where} at {self.verified.at} by {run_of(self.verified)}{checks}, "
            f"ran {duration(self.ran_for)} ({since})"
        )

    def unverified_problem(self, app: str) -> str:
        """Why a healthy rollout of the digest is no proof: the checks configured for ``app`` never passed on it."""
        entry = self.unverified
        seen = describe(entry.verified, entry.checks) if entry is not None else "not verified"
        when = f" at {entry.at} by {run_of(entry)}" if entry is not None else ""
        return (
            f"{self.digest} rolled out healthy in {self.env}{when}, but the checks configured for {app or 'it'} in "
            f"{self.env} never passed on it (its rollout recorded: {seen}): run them with `deployctl verify "
            f"{self.env}{' --app ' + app if app else ''}`"
        )

    def data(self) -> dict[str, Any]:
        failure = self.failed_after
        several = {"clusters": list(self.clusters), "missing": list(self.missing)} if self.clusters else {}
        return {
            **several,
            "env": self.env,
            "digest": self.digest,
            "verified_at": self.verified.at if self.verified else None,
            "verified_by": run_of(self.verified) if self.verified else None,
            "ran_for_seconds": round(self.ran_for.total_seconds()),
            "still_running": self.running,
            "failed_after": _failure_data(failure) if failure else None,
            "last_failure": _failure_data(self.last_failure) if self.last_failure else None,
            "rolled_out": self.last_rollout is not None,
            "verified": self.verified.verified if self.verified else None,
            "checks": checks_data(self.verified.checks) if self.verified else [],
            "unverified_at": self.unverified.at if self.unverified else None,
        }


def _failure_data(failure: Entry) -> dict[str, Any]:
    found = {"at": failure.at, "by": run_of(failure), "verdict": failure.verdict, "message": failure.message}
    return found | ({"cluster": failure.cluster} if failure.cluster else {})


# outcomes of a rollout that reached the cluster (not interrupted); ``unchanged``: a redeploy found the digest already
# running there (no helm revision): it ends another digest's period, and never starts or restarts one
REACHED = ("succeeded", "failed", "unknown", "unchanged")


def evidence_of(
    entries: Sequence[Entry], *, env: str, app: str, digest: str, now: datetime, checks: bool = False
) -> Evidence:
    """Read ``entries`` (any order) of ``env`` for ``app``: the latest healthy period of ``digest``, any failure after
    the latest healthy rollout, and (to tell "never deployed" from "failed" when it never ran healthy) its latest
    failure and latest rollout.

    A period starts at a healthy rollout of ``digest`` and is the time it was proven to serve there: it ends at a
    failure of the digest (which also voids the proof: the soak starts again at its next healthy rollout, from
    zero), at a rollout of the digest whose outcome nobody judged (``unknown``), and at any rollout of another
    digest that reached the cluster, whatever its outcome (even a failed one may have replaced its pods; only an
    ``interrupted`` one, which never reached the cluster, leaves it running), from when that rollout began (its
    intent): a rollout in progress, or whose run died (an open intent), ends it too. The soak counts the latest
    period only: time is proven by a continuous occupation, as Kargo's soak is, never summed across periods.

    ``checks``: the app has checks configured in ``env``; then a healthy rollout proves the digest only when its
    checks passed (``healthy``), and a passed ``deployctl verify`` of it proves it too. A failed verification is a
    failure of the digest. A verification changes no pod: one of another digest, or one never judged, counts for
    nothing."""
    ordered = sorted(
        (e for e in entries if e.app == app and e.action in (*ROLLOUTS, VERIFY)), key=lambda e: e.order
    )  # S3's clock
    completed = {e.intent for e in ordered if e.intent}
    began = {e.id: datetime.fromisoformat(e.at) for e in ordered if e.outcome == "started"}
    verified: Entry | None = None
    failed_after: Entry | None = None
    last_failure: Entry | None = None
    last_rollout: Entry | None = None
    unverified: Entry | None = None
    started: datetime | None = None  # the open period's start (None: it does not run there, by the ledger)
    ran = timedelta()  # the latest period's length
    for entry in ordered:
        outcome = entry.outcome
        if outcome == "started" and entry.id in completed:
            continue  # its completion says how it ended
        mine = entry.digest == digest
        if entry.action == VERIFY and (not mine or outcome not in ("succeeded", "failed")):
            continue  # a verification changes no pod: only its verdict on the digest counts
        if outcome == "started":
            outcome = "unknown"  # in progress, or its run died: from its start it may have replaced the pods
        at = datetime.fromisoformat(entry.at)
        if mine and entry.outcome != "started" and entry.action in ROLLOUTS:
            last_rollout = entry
        if mine and not healthy(entry, checks) and healthy(entry):
            unverified = entry  # healthy pods, but the checks configured for it never ran on it
        if mine and healthy(entry, checks):
            verified, failed_after, last_failure, unverified = entry, None, None, None
            if started is None:
                started, ran = at, timedelta()
            continue
        ends = outcome in REACHED if not mine else outcome == "unknown" or failed(entry)
        if started is not None and ends:  # from when that rollout began (its intent), the pods may have changed
            ran, started = max(timedelta(), min(at, began.get(entry.intent or "", at)) - started), None
        if mine and failed(entry):
            last_failure = entry
            if verified is not None and failed_after is None:
                failed_after = entry
    if started is not None:
        ran = max(timedelta(), now - started)
    return Evidence(
        env,
        digest,
        verified,
        failed_after,
        ran,
        running=started is not None,
        last_failure=last_failure,
        last_rollout=last_rollout,
        unverified=unverified,
    )


def fleet_evidence(
    entries: Sequence[Entry],
    *,
    env: str,
    app: str,
    digest: str,
    now: datetime,
    first_wave: Sequence[str] = (),
    checks: bool = False,
) -> Evidence:
    """``evidence_of`` for a source with several clusters (``first_wave``: the names of its first wave; empty: one
    cluster, ``evidence_of`` itself). See the module doc for what it proves."""
    if not first_wave:
        return evidence_of(entries, env=env, app=app, digest=digest, now=now, checks=checks)
    mine = [e for e in entries if e.app == app]
    clusters = sorted({e.cluster for e in mine if e.cluster} | set(first_wave))
    per = {
        c: evidence_of([e for e in mine if e.cluster == c], env=env, app=app, digest=digest, now=now, checks=checks)
        for c in clusters
    }
    failures = [p.failed_after for p in per.values() if p.failed_after is not None]
    for cluster, proof in per.items():  # failed where it never ran healthy (a later wave)
        judged = [e for e in mine if e.cluster == cluster and e.digest == digest and (healthy(e, checks) or failed(e))]
        last = max(judged, key=lambda e: e.order, default=None)
        if proof.verified is None and last is not None and failed(last):
            failures.append(last)
    wave = [per[c] for c in first_wave]
    missing = tuple(c for c in first_wave if per[c].verified is None)
    latest = max((p.verified for p in wave if p.verified is not None), key=lambda e: e.order, default=None)

    def newest(found: list[Entry | None]) -> Entry | None:
        return max((e for e in found if e is not None), key=lambda e: e.order, default=None)

    return Evidence(
        env,
        digest,
        None if missing else latest,
        min(failures, key=lambda e: e.order, default=None),
        min(p.ran_for for p in wave),
        running=all(p.running for p in wave),
        clusters=tuple(first_wave),
        missing=missing,
        last_failure=newest([p.last_failure for p in per.values()]),
        last_rollout=newest([p.last_rollout for p in per.values()]),
        unverified=newest([p.unverified for p in wave]),
    )


def duration(span: timedelta) -> str:
    """A span for humans: 45s, 12 min, 3 h 20 min."""
    seconds = int(span.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"
