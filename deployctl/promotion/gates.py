"""Promotion, pure: the request, the facts found per app, and the gates judged on them. No I/O here
(table-tested in tests/unit/test_promote_plan.py); ``promotion_plan`` shows the plan and the result,
``app/promote.py`` finds the facts and acts.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from deployctl.config import Environment
from deployctl.core.errors import PolicyError
from deployctl.core.refs import ImageRef, InvalidValueError, ReleaseTag, Version
from deployctl.ledger.store import Entry, Override
from deployctl.promotion.evidence import Evidence, duration, failure_of, run_of

log = logging.getLogger(__name__)

SKIP_DEV_CHECK = "--skip-dev-check"
VERIFIED = "verified-in-source"
ALLOW_DOWNGRADE = "--allow-downgrade"
ALLOW_LOCAL_TAG = "--allow-local-tag"


@dataclass(frozen=True)
class PromoteRequest:
    tag: str
    to_env: str | None = None
    app: str | None = None
    dry_run: bool = False
    skip_dev_check: bool = False
    allow_downgrade: bool = False
    allow_local_tag: bool = False  # promote a tag the remote does not have (recorded)
    reason: str | None = None
    commit: bool = False
    push: bool = False  # push the values commit to the main branch (implies commit)
    deploy: bool = True
    lock_timeout: float | None = None
    rollout_timeout: float | None = None  # None: the target's rollout_timeout_seconds

    def overrides(self) -> tuple[Override, ...]:
        found = []
        if self.skip_dev_check:
            found.append(Override(SKIP_DEV_CHECK, self.reason or ""))
        if self.allow_downgrade:
            found.append(Override(ALLOW_DOWNGRADE, self.reason or ""))
        if self.allow_local_tag:
            found.append(Override(ALLOW_LOCAL_TAG, self.reason or ""))
        return tuple(found)

    def gate_overrides(self) -> dict[str, bool]:
        """``judge``'s keyword arguments: the overrides asked for."""
        return {
            "skip_dev_check": self.skip_dev_check,
            "allow_downgrade": self.allow_downgrade,
            "allow_local_tag": self.allow_local_tag,
        }

    def rollout_seconds(self, target: Environment) -> float:
        return float(self.rollout_timeout if self.rollout_timeout is not None else target.rollout_timeout_seconds)


@dataclass(frozen=True)
class Facts:
    """What was found before anything is judged."""

    release: ReleaseTag
    commit: str
    on_main: bool
    main_ref: str
    source_env: str
    target_env: str
    source_image: ImageRef  # repository + tag (the commit sha) the build pushed
    source_digest: str | None  # what that tag names, None when the build did not push it
    evidence: Evidence | None  # what the source's ledger proves about the digest (None: no digest)
    target_version: Version | None  # the version the target runs now
    target_digest: str | None  # the digest the target runs now
    target_from: str  # ledger | values | none
    target_tag_digest: str | None  # what the release tag names in the target repository
    soak: timedelta = timedelta()  # how long the digest must have run healthy in the source (promote_soak_minutes)
    app: str = ""
    optional: bool = False  # an app a commit may not rebuild: no image means it keeps what it runs
    tag_on_remote: bool = True  # the remote (origin) has the release tag, naming this commit
    tag_remote: str = ""  # what the remote check found (why not, when it does not)
    # Several target clusters: those that do not run ``target_digest``, and what the release tag names in each
    # cluster's own registry (registry -> digest or None).
    behind: tuple[str, ...] = ()
    regional_tags: tuple[tuple[str, str | None], ...] = ()
    # The source judged live (``app.steps.source_health``): None when not judged (no cluster, no digest); whether
    # it still runs the digest, why it is not healthy now, and what runs instead where it does not.
    live_runs: bool | None = None
    live_problems: tuple[str, ...] = ()
    live_elsewhere: tuple[str, ...] = ()
    target_healthy: bool | None = None  # the target runs the digest, healthy, now (None: not judged)
    # The newest release promoted there, deployed or only moved (``--no-deploy``): what its values file and release
    # tag say. ``deploy``: this promotion deploys (else it is done once the image is moved and recorded).
    recorded_version: Version | None = None
    recorded_digest: str | None = None
    deploy: bool = True
    # The source's ledger: entries deleted, rewritten or unreadable (by key: its evidence cannot be trusted), and
    # this digest's healthy entries not counted (their writer's clock was off S3's)
    source_ledger: tuple[str, ...] = ()
    not_counted: tuple[str, ...] = ()

    @property
    def skipped(self) -> bool:
        return self.optional and self.source_digest is None

    @property
    def done(self) -> bool:
        """Nothing to do: the target runs the digest, healthy, under the release tag in every registry; without
        ``deploy``, the image is moved there and recorded already."""
        digest = self.source_digest
        regional = all(d == digest for _, d in self.regional_tags)
        moved = digest is not None and self.target_tag_digest == digest and regional
        if not self.deploy:
            return moved and digest in (self.recorded_digest, self.target_digest)
        return moved and self.target_digest == digest and not self.behind and self.target_healthy is not False


@dataclass(frozen=True)
class Gate:
    name: str
    ok: bool
    message: str
    override: str | None = None  # the flag that overrides it (None: cannot be overridden)
    overridden: bool = False
    app: str = ""
    fix: str = ""  # what to do instead, for a gate no flag overrides (the refusal's hint)

    @property
    def refused(self) -> bool:
        return not self.ok and not self.overridden

    def data(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "name": self.name,
            "ok": self.ok,
            "overridden": self.overridden,
            "override": self.override,
            "message": self.message,
        }


def judge(
    facts: Facts, *, skip_dev_check: bool = False, allow_downgrade: bool = False, allow_local_tag: bool = False
) -> tuple[Gate, ...]:
    """Every gate of one app with its verdict (a table: see tests/unit/test_promote_plan.py)."""
    gates = _judge(facts, skip_dev_check=skip_dev_check, allow_downgrade=allow_downgrade)
    if not facts.skipped:
        pushed = facts.tag_on_remote
        message = facts.tag_remote or f"{facts.release} is on the remote"
        if not pushed:
            message += f"; or pass {ALLOW_LOCAL_TAG} --reason TEXT"
        gates.insert(1, Gate("tag-on-remote", pushed, message, ALLOW_LOCAL_TAG, not pushed and allow_local_tag))
    return tuple(replace(g, app=facts.app) for g in gates)


def _judge(facts: Facts, *, skip_dev_check: bool, allow_downgrade: bool) -> list[Gate]:
    digest = facts.source_digest
    release = facts.release
    if facts.skipped:
        message = f"not rebuilt for {facts.commit[:12]} (optional): it keeps what it runs"
        return [Gate("image-built", True, message)]
    gates = [
        Gate(
            "on-main",
            facts.on_main,
            f"{release} ({facts.commit[:12]}) is on {facts.main_ref}"
            if facts.on_main
            else f"{release} points at {facts.commit[:12]}, which is not on {facts.main_ref}: "
            "only commits built on main can be released",
        ),
        Gate(
            "image-built",
            digest is not None,
            f"{facts.source_image.name}:{facts.source_image.tag} is {digest}"
            if digest
            else f"no image {facts.source_image.name}:{facts.source_image.tag}: build-image on main did not push "
            f"an image for commit {facts.commit[:12]} (run the main pipeline for it, then promote again)",
        ),
    ]
    taken = facts.target_tag_digest is not None and digest is not None and facts.target_tag_digest != digest
    elsewhere = [(r, d) for r, d in facts.regional_tags if d is not None and digest is not None and d != digest]
    where, named = ("the target repository", facts.target_tag_digest)
    if not taken and elsewhere:  # a cluster's own registry (several clusters)
        where, named = f"the registry {elsewhere[0][0]}", elsewhere[0][1]
    gates.append(
        Gate(
            "tag-immutable",
            not taken and not elsewhere,
            f"{release} already names {named} in {where}, not {digest}; "
            "release tags are immutable: cut a new release tag"
            if taken or elsewhere
            else f"{release} is free in the target repository"
            if facts.target_tag_digest is None
            else f"{release} already names {digest} in the target repository",
        )
    )
    done = facts.done
    gates.append(verified_in_source(facts, done=done, skip=skip_dev_check))
    current, same = facts.target_version, facts.target_digest
    recorded = facts.recorded_version  # a newer release moved there (--no-deploy) is not rolled back either
    if recorded is not None and (current is None or recorded > current):
        current, same = recorded, facts.recorded_digest
    runs = "runs" if current == facts.target_version else "has recorded (moved, not deployed)"
    newer = (
        done
        or current is None
        or release.version > current
        or (release.version == current and digest is not None and same == digest)
    )
    gates.append(
        Gate(
            "newer-than-target",
            newer,
            f"{release.version} replaces {current or 'nothing'} in {facts.target_env}"
            if newer
            else f"{release.version} is not newer than {current}, which {facts.target_env} {runs} "
            f"(from the {facts.target_from}); pass {ALLOW_DOWNGRADE} --reason TEXT to roll back deliberately",
            ALLOW_DOWNGRADE,
            overridden=not newer and allow_downgrade,
        )
    )
    return gates


def target_state(
    entries: Sequence[Entry], env: Environment, app: str, clusters: Sequence[str] = ()
) -> tuple[Version | None, str | None, str, tuple[str, ...]]:
    """The version and digest ``app`` runs in the target: its newest rollout there that deployctl judged healthy
    (a promotion, or a deploy: ``--allow-unpromoted`` included), from the target's ledger. Never the values file
    alone (anyone can edit it), never a promotion recorded but not deployed (``moved``) or one that failed. With
    several ``clusters``, the newest version any of them runs and the clusters that do not run its digest (a
    release stopped in an earlier wave)."""
    if clusters:
        found = {c: target_state([e for e in entries if e.cluster == c], env, app) for c in clusters}
        newest = max(found, key=lambda c: (found[c][0] is not None, found[c][0] or Version(0, 0, 0)))
        version, digest, source, _ = found[newest]
        return version, digest, source, tuple(c for c in clusters if found[c][1] != digest)
    for entry in entries:
        rolled_out = entry.action in ("promote", "deploy") and entry.outcome == "succeeded"
        if entry.app != app or not rolled_out or entry.verdict != "healthy":
            continue
        return _version(entry, env), entry.digest, "ledger", ()
    return None, None, "none", ()


def recorded_state(entries: Sequence[Entry], env: Environment, app: str) -> tuple[Version | None, str | None]:
    """The newest release promoted to the target for ``app``, deployed (healthy) or only moved (``--no-deploy``):
    its version and digest, from the target's ledger (newest first)."""
    for entry in entries:
        if entry.app != app or entry.action != "promote":
            continue
        if entry.outcome == "moved" or (entry.outcome == "succeeded" and entry.verdict == "healthy"):
            return _version(entry, env), entry.digest
    return None, None


def _version(entry: Entry, env: Environment) -> Version | None:
    """The release a rollout deployed (a promotion's release, a deploy's image tag), None when no release names
    it (a deploy's ``release`` is its helm revision, ``api@3``; ``--allow-unpromoted`` may deploy any tag)."""
    for text in (entry.release, entry.tag):
        try:
            return ReleaseTag.parse(text or "", env.release_tag_pattern, allow_prerelease=True).version
        except InvalidValueError:
            continue
    return None


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


def refusal(gates: Sequence[Gate]) -> PolicyError | None:
    """One error that names every refused gate and its override, or what to do instead (a gate's ``fix``), or
    that there is none."""
    refused = [g for g in gates if g.refused]
    if not refused:
        return None
    lines = list(dict.fromkeys(f"{g.app + ': ' if g.app else ''}{g.name}: {g.message}" for g in refused))
    message = lines[0] if len(lines) == 1 else f"{len(lines)} promotion checks failed:\n  " + "\n  ".join(lines)
    overrides = sorted({g.override for g in refused if g.override})
    several = len({g.app for g in refused}) > 1
    fixes = list(dict.fromkeys(f"{g.app + ': ' if several else ''}{g.fix}" for g in refused if g.fix))
    fixed = list(dict.fromkeys(g.name for g in refused if g.override is None and not g.fix))
    parts = [*fixes, f"{', '.join(fixed)} cannot be overridden"] if fixed else fixes
    if parts:
        hint = "; ".join(parts)
        if overrides:
            hint += f"; the others: {' / '.join(overrides)} with --reason TEXT"
    else:
        hint = f"fix the cause, or override with {' and '.join(overrides)} --reason TEXT (recorded in history)"
    return PolicyError(message, hint, details={"gates": [g.data() for g in gates]})


def used(flag: str, gates: Sequence[Gate]) -> bool:
    """Whether override ``flag`` changed a verdict (only those are recorded)."""
    return any(g.overridden and g.override == flag for g in gates)
