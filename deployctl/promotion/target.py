"""What the promotion target runs, from its ledger: the version and digest each app rolled out healthy, or was
promoted to."""

from __future__ import annotations

from collections.abc import Sequence

from deployctl.config import Environment
from deployctl.core.refs import InvalidValueError, ReleaseTag, Version
from deployctl.ledger.entry import Entry

# What a promotion reads of its target's ledger (``target_state``, ``recorded_state``, the changelog's base): the
# rollouts and promotions that may have brought a digest, read newest first until ``settled`` says nothing older
# can change the answer (issue 29: the target's whole history was read by every promotion).
ASKED_ACTIONS = ("promote", "deploy")
ASKED_OUTCOMES = ("succeeded", "moved")


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
        if entry.app == app and rolled_out(entry):
            return _version(entry, env), entry.digest, "ledger", ()
    return None, None, "none", ()


def recorded_state(entries: Sequence[Entry], env: Environment, app: str) -> tuple[Version | None, str | None]:
    """The newest release promoted to the target for ``app``, deployed (healthy) or only moved (``--no-deploy``):
    its version and digest, from the target's ledger (newest first)."""
    for entry in entries:
        if entry.app == app and recorded(entry):
            return _version(entry, env), entry.digest
    return None, None


def rolled_out(entry: Entry) -> bool:
    """A rollout deployctl judged healthy in the target (a promotion's, or a deploy's)."""
    return entry.action in ASKED_ACTIONS and entry.outcome == "succeeded" and entry.verdict == "healthy"


def recorded(entry: Entry) -> bool:
    """A promotion that brought its digest: deployed healthy, or moved only (``--no-deploy``)."""
    return entry.action == "promote" and (entry.outcome == "moved" or rolled_out(entry))


def base_commit(entries: Sequence[Entry], apps: Sequence[str]) -> str | None:
    """The commit the target runs for the changelog: its newest succeeded promotion of any of ``apps``."""
    found = (e.commit for e in entries if e.app in apps and e.action == "promote" and e.outcome == "succeeded")
    return next((commit for commit in found if commit), None)


def _version(entry: Entry, env: Environment) -> Version | None:
    """The release a rollout deployed (a promotion's release, a deploy's image tag), None when no release names
    it (a deploy's ``release`` is its helm revision, ``api@3``; ``--allow-unpromoted`` may deploy any tag)."""
    for text in (entry.release, entry.tag):
        try:
            return ReleaseTag.parse(text or "", env.release_tag_pattern, allow_prerelease=True).version
        except InvalidValueError:
            continue
    return None


def settled(entries: Sequence[Entry], apps: Sequence[str], clusters: Sequence[str] = ()) -> bool:
    """Whether ``entries`` (the target's newest, newest first) hold every app's newest healthy rollout (in each of
    ``clusters``), its newest recorded promotion, and a promotion with its commit: then no older entry changes
    ``target_state``, ``recorded_state`` or the changelog's base (each found by the same predicate)."""

    def ran(app: str, cluster: str | None) -> bool:
        return any(e.app == app and rolled_out(e) and (not clusters or e.cluster == cluster) for e in entries)

    return base_commit(entries, apps) is not None and all(
        any(e.app == app and recorded(e) for e in entries) and all(ran(app, c) for c in clusters or (None,))
        for app in apps
    )
