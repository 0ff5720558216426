"""What the promotion target runs, from its ledger: the version and digest each app rolled out healthy, or was
promoted to."""

from __future__ import annotations

from collections.abc import Sequence

from deployctl.config import Environment
from deployctl.core.refs import InvalidValueError, ReleaseTag, Version
from deployctl.ledger.entry import Entry


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


# What a promotion reads of its target's ledger (``target_state``, ``recorded_state``, the changelog's base): the
# rollouts and promotions that may have brought a digest, read newest first until ``settled`` says nothing older
# can change the answer (issue 29: the target's whole history was read by every promotion).
ASKED_ACTIONS = ("promote", "deploy")
ASKED_OUTCOMES = ("succeeded", "moved")


def settled(entries: Sequence[Entry], apps: Sequence[str], clusters: Sequence[str] = ()) -> bool:
    """Whether ``entries`` (the target's newest, newest first) hold every app's newest healthy rollout (in each of
    ``clusters``), its newest recorded promotion, and a promotion with its commit: then no older entry changes
    ``target_state``, ``recorded_state`` or the changelog's base."""

    def rolled_out(entry: Entry, app: str, cluster: str | None) -> bool:
        healthy = entry.action in ASKED_ACTIONS and entry.outcome == "succeeded" and entry.verdict == "healthy"
        return entry.app == app and healthy and (not clusters or entry.cluster == cluster)

    def recorded(entry: Entry, app: str) -> bool:
        deployed = entry.outcome == "succeeded" and entry.verdict == "healthy"
        return entry.app == app and entry.action == "promote" and (entry.outcome == "moved" or deployed)

    based = any(e.app in apps and e.action == "promote" and e.outcome == "succeeded" and e.commit for e in entries)
    return based and all(
        any(recorded(e, app) for e in entries)
        and all(any(rolled_out(e, app, c) for e in entries) for c in (clusters or (None,)))
        for app in apps
    )
