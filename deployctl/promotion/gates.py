"""Promotion's gates, pure: every gate rule judged on an app's facts (``facts``), in one list (``judge``), and the
refusal they make. No I/O here (table-tested in tests/unit/test_promote_plan.py); the request: ``request``; the
source gate: ``source_gate``; ``plan`` shows the plan and the result, ``app/promote.py`` finds the facts and acts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from deployctl.core.errors import PolicyError
from deployctl.promotion.facts import Facts, Gate
from deployctl.promotion.request import ALLOW_DOWNGRADE, ALLOW_LOCAL_TAG
from deployctl.promotion.source_gate import verified_in_source

log = logging.getLogger(__name__)


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
