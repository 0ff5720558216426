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

from deployctl.history import Entry

ROLLOUTS = ("deploy", "promote")


def healthy(entry: Entry) -> bool:
    """A rollout deployctl itself judged healthy from the cluster (see ``rollout.release_health``)."""
    return entry.action in ROLLOUTS and entry.outcome == "succeeded" and entry.verdict == "healthy"


def failed(entry: Entry) -> bool:
    return entry.action in ROLLOUTS and entry.outcome == "failed"


def run_of(entry: Entry) -> str:
    """Who did it, as a reader can find it: the CI run, else the actor; plus the ledger entry id."""
    who = f"CI run {entry.ci_run_id}" if entry.ci_run_id else f"{entry.actor}"
    return f"{who} (entry {entry.id})"


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

    @property
    def proven(self) -> bool:
        return self.verified is not None and self.failed_after is None

    def describe(self) -> str:
        where = f"{self.env}'s first-wave clusters ({', '.join(self.clusters)})" if self.clusters else self.env
        if self.verified is None:
            missing = f" (none in {', '.join(self.missing)})" if self.missing else ""
            return f"no healthy rollout of {self.digest} in {where} is recorded{missing}"
        since = "still runs there" if self.running else "since replaced"
        return (
            f"rolled out healthy in {where} at {self.verified.time} by {run_of(self.verified)}, "
            f"ran {duration(self.ran_for)} ({since})"
        )

    def data(self) -> dict[str, Any]:
        failure = self.failed_after
        several = {"clusters": list(self.clusters), "missing": list(self.missing)} if self.clusters else {}
        return {
            **several,
            "env": self.env,
            "digest": self.digest,
            "verified_at": self.verified.time if self.verified else None,
            "verified_by": run_of(self.verified) if self.verified else None,
            "ran_for_seconds": round(self.ran_for.total_seconds()),
            "still_running": self.running,
            "failed_after": {"at": failure.time, "by": run_of(failure), "message": failure.message}
            | ({"cluster": failure.cluster} if failure.cluster else {})
            if failure
            else None,
        }


def evidence_of(entries: Sequence[Entry], *, env: str, app: str, digest: str, now: datetime) -> Evidence:
    """Read ``entries`` (any order) of ``env`` for ``app``: the healthy periods of ``digest`` and any
    failure after the latest healthy rollout. A period starts at a healthy rollout of ``digest`` and ends
    at the next successful rollout of another digest (a failed rollout of another digest leaves the old
    pods serving: nothing is rolled back)."""
    ordered = sorted((e for e in entries if e.app == app), key=lambda e: e.time)
    verified: Entry | None = None
    failed_after: Entry | None = None
    started: datetime | None = None
    ran = timedelta()
    for entry in ordered:
        at = datetime.fromisoformat(entry.time)
        if entry.digest == digest and healthy(entry):
            verified, failed_after = entry, None
            started = started or at
        elif entry.digest == digest and failed(entry) and verified is not None and failed_after is None:
            failed_after = entry
        elif entry.digest != digest and entry.action in ROLLOUTS and entry.outcome == "succeeded" and started:
            ran += at - started
            started = None
    if started is not None:
        ran += max(timedelta(), now - started)
    return Evidence(env, digest, verified, failed_after, ran, running=started is not None)


def fleet_evidence(
    entries: Sequence[Entry], *, env: str, app: str, digest: str, now: datetime, first_wave: Sequence[str] = ()
) -> Evidence:
    """``evidence_of`` for a source with several clusters (``first_wave``: the names of its first wave; empty: one
    cluster, ``evidence_of`` itself). See the module doc for what it proves."""
    if not first_wave:
        return evidence_of(entries, env=env, app=app, digest=digest, now=now)
    mine = [e for e in entries if e.app == app]
    clusters = sorted({e.cluster for e in mine if e.cluster} | set(first_wave))
    per = {
        c: evidence_of([e for e in mine if e.cluster == c], env=env, app=app, digest=digest, now=now) for c in clusters
    }
    failures = [p.failed_after for p in per.values() if p.failed_after is not None]
    for cluster, proof in per.items():  # failed where it never ran healthy (a later wave)
        judged = [e for e in mine if e.cluster == cluster and e.digest == digest and (healthy(e) or failed(e))]
        last = max(judged, key=lambda e: e.time, default=None)
        if proof.verified is None and last is not None and failed(last):
            failures.append(last)
    wave = [per[c] for c in first_wave]
    missing = tuple(c for c in first_wave if per[c].verified is None)
    latest = max((p.verified for p in wave if p.verified is not None), key=lambda e: e.time, default=None)
    return Evidence(
        env,
        digest,
        None if missing else latest,
        min(failures, key=lambda e: e.time, default=None),
        min(p.ran_for for p in wave),
        running=all(p.running for p in wave),
        clusters=tuple(first_wave),
        missing=missing,
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
