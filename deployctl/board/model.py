"""The release board's content, pure: per environment and app what runs (from the live release and the
ledger), each environment's recent rollouts, and what waits to be promoted. ``app.board`` gathers the facts;
``board_render`` draws this as HTML or Markdown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from deployctl.core.refs import InvalidValueError, ReleaseTag, Version
from deployctl.ledger.entry import Entry, open_intents
from deployctl.promotion.evidence import ROLLOUTS, duration, evidence_of, healthy
from deployctl.rollout.states import Health
from deployctl.verification.model import describe

TIMELINE_ACTIONS = (*ROLLOUTS, "verify", "recover", "override")
NOT_READ = Health(False, ("not read",))


@dataclass(frozen=True)
class Live:
    """One app's release as the cluster shows it now."""

    installed: bool
    revision: int | None = None
    helm_status: str | None = None
    digest: str | None = None  # what its workloads' spec names
    git_sha: str | None = None
    health: Health = NOT_READ


@dataclass(frozen=True)
class Cell:
    env: str
    app: str
    state: str  # healthy | unhealthy | absent | unreachable
    release: str | None = None  # release-0.1.1 (a promotion) or api@3 (a deploy: release@revision)
    digest: str | None = None
    commit: str | None = None
    subject: str | None = None
    deployed_at: str | None = None
    deployed_by: str | None = None  # CI run N, or who
    verdict: str = ""  # "healthy", or why not
    drift: str = ""  # matches | differs | unpinned | unknown
    drift_detail: str = ""
    note: str = ""  # why the cluster could not be read
    checks: str = ""  # the newest verification of the digest that runs ("checks passed (readyz)"), beside the verdict


@dataclass(frozen=True)
class BoardEvent:
    """One rollout (or recovery, override) in an environment's timeline."""

    env: str
    app: str
    action: str
    outcome: str  # succeeded | unchanged | failed | unknown | interrupted | in-progress
    time: str
    release: str | None
    digest: str | None
    commit: str | None
    by: str
    message: str
    overrides: tuple[str, ...] = ()
    verdict: str | None = None
    checks: str = ""  # its verification ("checks failed: readyz (http): ..."); "" when it recorded none

    @property
    def failed(self) -> bool:
        # ``unchanged`` with a failed verdict: a redeploy (no helm revision) found the release unhealthy
        return self.outcome in ("failed", "unknown", "interrupted") or self.verdict == "failed"


@dataclass(frozen=True)
class Waiting:
    env: str  # the promotion target
    kind: str  # release | digest
    what: str  # the tag, or the digest
    app: str | None
    detail: str


@dataclass(frozen=True)
class Column:
    env: str
    promote_from: str | None
    freeze: str  # "open", "frozen by ...", from windows.FreezeState.describe
    frozen: bool
    timeline: tuple[BoardEvent, ...]
    problem: str = ""  # the environment (its ledger or cluster) could not be read: why


@dataclass(frozen=True)
class Board:
    generated_at: str
    apps: tuple[str, ...]
    columns: tuple[Column, ...]
    cells: Mapping[tuple[str, str], Cell]
    waiting: tuple[Waiting, ...]
    notes: tuple[str, ...] = ()

    def cell(self, env: str, app: str) -> Cell:
        return self.cells[(env, app)]

    def data(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at,
            "apps": list(self.apps),
            "environments": [
                {
                    "env": c.env,
                    "promote_from": c.promote_from,
                    "freeze": c.freeze,
                    "frozen": c.frozen,
                    "problem": c.problem or None,
                    "apps": [vars(self.cell(c.env, app)) for app in self.apps],
                    "timeline": [{**vars(e), "overrides": list(e.overrides)} for e in c.timeline],
                }
                for c in self.columns
            ],
            "waiting": [vars(w) for w in self.waiting],
            "notes": list(self.notes),
        }


def by(entry: Entry) -> str:
    return f"CI run {entry.ci_run_id}" if entry.ci_run_id else entry.actor


def timeline(env: str, entries: Sequence[Entry], limit: int) -> tuple[BoardEvent, ...]:
    """The newest ``limit`` rollouts of ``entries`` (newest first); an intent no outcome completed is in progress
    (or its run died), an intent that was completed is shown by its outcome only."""
    unfinished = {e.id for e in open_intents(list(entries))}
    found: list[BoardEvent] = []
    for e in entries:
        if e.action not in TIMELINE_ACTIONS or (e.outcome == "started" and e.id not in unfinished):
            continue
        outcome = "in-progress" if e.id in unfinished else e.outcome
        overrides = tuple(f"{o.flag}: {o.reason}" for o in e.overrides)
        checks = describe(e.verified, e.checks) if e.verified else ""
        found.append(
            BoardEvent(
                env,
                e.app,
                e.action,
                outcome,
                e.at,
                e.release,
                e.digest,
                e.commit,
                by(e),
                e.message,
                overrides,
                e.verdict,
                checks,
            )  # fmt: skip
        )
        if len(found) == limit:
            break
    return tuple(found)


def by_app(entries: Iterable[Entry]) -> dict[str, list[Entry]]:
    """Entries grouped by app, each list in the order given (newest first)."""
    grouped: dict[str, list[Entry]] = {}
    for entry in entries:
        grouped.setdefault(entry.app, []).append(entry)
    return grouped


def cell(
    env: str,
    app: str,
    live: Live | None,
    entries: Sequence[Entry],
    values_digest: str | None,
    *,
    problem: str = "",
    subjects: Mapping[str, str] | None = None,
) -> Cell:
    """What ``app`` runs in ``env``: ``live`` from the cluster (None: unreachable, ``problem`` says why), told with
    its newest successful rollout in ``entries`` (the app's, newest first) of the digest that runs."""
    digest = live.digest if live is not None and live.installed else None
    rollout = next(
        (
            e
            for e in entries
            if e.action in ROLLOUTS and e.outcome == "succeeded" and (digest is None or e.digest == digest)
        ),
        None,
    )
    if live is None:
        state, verdict = "unreachable", problem or "the cluster could not be read"
    elif not live.installed:
        state, verdict = "absent", "not installed"
    else:
        state, verdict = ("healthy" if live.health.healthy else "unhealthy"), live.health.summary
    digest = digest or (rollout.digest if rollout else None)
    commit = (live.git_sha if live is not None and live.git_sha else None) or (rollout.commit if rollout else None)
    if live is None or not live.installed:
        drift, detail = "unknown", ""
    elif not values_digest:
        drift, detail = "unpinned", "the values file pins no digest (deploys by commit)"
    elif values_digest == digest:
        drift, detail = "matches", "runs the digest the values file pins"
    else:
        drift, detail = "differs", f"the values file pins {values_digest}"
    checked = next((e for e in entries if e.verified and e.outcome != "started" and e.digest == digest), None)
    release = rollout.release if rollout else None
    if release is None and live is not None and live.revision is not None:
        release = f"revision {live.revision}"
    return Cell(
        env=env,
        app=app,
        state=state,
        release=release,
        digest=digest,
        commit=commit,
        subject=(subjects or {}).get(commit or ""),
        deployed_at=rollout.at if rollout else None,
        deployed_by=by(rollout) if rollout else None,
        verdict=verdict,
        drift=drift,
        drift_detail=detail,
        note=problem,
        checks=describe(checked.verified, checked.checks) if checked is not None else "",
    )


def current_release(entries: Sequence[Entry], pattern: str) -> Version | None:
    """The newest release version a succeeded promotion brought (entries newest first)."""
    found = [_version(e.release or "", pattern) for e in entries if e.action == "promote" and e.outcome == "succeeded"]
    return max((v for v in found if v is not None), default=None)


def waiting_releases(env: str, tags: Iterable[str], entries: Sequence[Entry], pattern: str) -> list[Waiting]:
    """Release tags newer than the newest release promoted to ``env``, newest first (a failed or refused attempt
    is said)."""
    current = current_release(entries, pattern)
    parsed = [(v, t) for t in tags if (v := _version(t, pattern)) is not None and (current is None or v > current)]
    waiting = []
    for _, tag in sorted(parsed, reverse=True):
        tried = next(
            (e for e in entries if e.action == "promote" and e.release == tag and e.outcome != "started"), None
        )
        detail = f"tagged, not promoted to {env}"
        if tried is not None:
            detail += f" (last attempt {tried.outcome} at {tried.at[:16]}: {tried.message.splitlines()[0][:120]})"
        waiting.append(Waiting(env, "release", tag, None, detail))
    return waiting


def waiting_digests(
    env: str,
    source: str,
    source_entries: Mapping[str, Sequence[Entry]],
    target_entries: Mapping[str, Sequence[Entry]],
    apps: Iterable[str],
    *,
    now: datetime,
    soak: timedelta,
    checks: Iterable[str] = (),
) -> list[Waiting]:
    """Per app: the digest the source's ledger proves healthy and still running there, when ``env`` never ran it
    (``checks``: the apps with checks configured in the source: only a passed verification proves them)."""
    found = []
    verified = set(checks)
    for app in apps:
        source_app = source_entries.get(app, ())
        newest = next((e for e in source_app if healthy(e, app in verified) and e.digest), None)
        if newest is None or newest.digest is None:
            continue
        proof = evidence_of(source_app, env=source, app=app, digest=newest.digest, now=now, checks=app in verified)
        ran_here = any(e.digest == newest.digest and e.outcome == "succeeded" for e in target_entries.get(app, ()))
        if not proof.proven or not proof.running or ran_here:
            continue
        soaked = "" if proof.ran_for >= soak else f"; soaking: {duration(proof.ran_for)} of {duration(soak)}"
        commit = f" (commit {newest.commit[:12]})" if newest.commit else ""
        detail = f"healthy in {source} since {newest.at[:16]}{commit}, not yet in {env}{soaked}"
        found.append(Waiting(env, "digest", newest.digest, app, detail))
    return found


def _version(tag: str, pattern: str) -> Version | None:
    try:
        return ReleaseTag.parse(tag, pattern, allow_prerelease=True).version
    except InvalidValueError:
        return None
