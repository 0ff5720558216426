"""Every webhook event in one place, pure: its name (``config``'s ``EventKind``: what a target subscribes to), its
title and icon (``SPECS``) and the builder that makes it from what happened. Adding an event: a name in
``EventKind``, a spec here and its builder; ``send`` renders any event in every format (a test renders them all).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, get_args

from deployctl.config.environments import EventKind

if TYPE_CHECKING:
    from deployctl.core.errors import DeployctlError
    from deployctl.ledger.entry import Override
    from deployctl.promotion.plan import PromotionPlan

EVENTS: tuple[EventKind, ...] = get_args(EventKind)  # promote-succeeded, promote-failed, ...


@dataclass(frozen=True)
class EventSpec:
    """How an event is shown: its title (after the environment's name) and its Slack icon."""

    title: str
    icon: str = ":information_source:"


SPECS: dict[EventKind, EventSpec] = {
    "promote-succeeded": EventSpec("promoted", ":white_check_mark:"),
    "promote-failed": EventSpec("promotion FAILED", ":rotating_light:"),
    "promote-refused": EventSpec("promotion refused", ":no_entry:"),
    "deploy-failed": EventSpec("deploy FAILED", ":rotating_light:"),
    "lock-taken-over": EventSpec("lock taken over"),
    "freeze-overridden": EventSpec("freeze overridden", ":warning:"),
}
# A promotion's summary: "release-1.2.0 promoted to prod".
_PROMOTION_SAID = {"promote-succeeded": "promoted to", "promote-refused": "refused in", "promote-failed": "failed in"}


@dataclass(frozen=True)
class Event:
    """One thing that happened to an environment, as its webhooks are told."""

    kind: EventKind
    env: str
    summary: str  # one line: what happened
    release: str | None = None
    apps: tuple[tuple[str, str | None], ...] = ()  # (app, digest)
    changelog_url: str | None = None
    verdict: str | None = None  # healthy | failed | refused ...
    failure: str | None = None  # the failure bundle's first line
    reason: str | None = None  # an override's reason
    actor: str | None = None
    ci_run: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in EVENTS:
            raise ValueError(f"unknown notification event {self.kind!r} (known: {', '.join(EVENTS)})")

    @property
    def spec(self) -> EventSpec:
        """This event's title and icon."""
        return SPECS[self.kind]


def promotion_event(
    kind: EventKind,
    plan: PromotionPlan,
    environ: Mapping[str, str],
    *,
    error: DeployctlError | None = None,
    freeze: Override | None = None,
    deployed: bool = True,
    overrides: tuple[Override, ...] = (),
) -> Event:
    """``promote-succeeded``, ``-refused`` or ``-failed`` for ``plan``: the release, its apps and digests, the
    changelog link (CI), the verdict, the error's first line, the gate ``overrides`` used (named in the summary) and
    the override's reason (the freeze's, else the gates': one ``--reason`` serves them all)."""
    base = plan.changelog.base if plan.changelog else None
    verdict = {"promote-refused": "refused", "promote-failed": "failed"}.get(kind, "healthy" if deployed else None)
    overriding = f" (overriding {', '.join(o.flag for o in overrides)})" if overrides else ""
    reason = freeze.reason if freeze else overrides[0].reason if overrides else None
    return Event(
        kind,
        plan.target_env,
        f"{plan.release} {_PROMOTION_SAID[kind]} {plan.target_env}"
        + ("" if deployed else " (not deployed)")
        + overriding,
        release=str(plan.release),
        apps=tuple((a.app, a.digest) for a in plan.apps if not a.skipped),
        changelog_url=compare_url(base, plan.commit, environ),
        verdict=verdict,
        failure=first_line(error.message) if error else None,
        reason=reason,
    )


def deploy_failed(
    env: str, apps: tuple[tuple[str, str | None], ...], error: DeployctlError, reason: str | None = None
) -> Event:
    """``deploy-failed``: the apps and digests a deploy rolled out, the error's first line, a freeze override's
    reason."""
    summary = f"deploy of {', '.join(a for a, _ in apps)} to {env} failed"
    return Event(
        "deploy-failed", env, summary, apps=apps, verdict="failed", failure=first_line(error.message), reason=reason
    )


def freeze_overridden(env: str, action: str, windows: str, reason: str) -> Event:
    """``freeze-overridden``: ``action`` ran into ``env`` during its change ``windows`` (their names), and why."""
    return Event("freeze-overridden", env, f"{action} into {env} during {windows}", reason=reason)


def lock_taken_over(env: str, holder: str) -> Event:
    """``lock-taken-over``: this run took over ``env``'s stale lock, held by ``holder`` (its description)."""
    return Event("lock-taken-over", env, f"took over a stale lock: {holder}")


def first_line(text: str | None, limit: int = 300) -> str | None:
    """The first non-empty line of a failure (its bundle can be pages of diagnosis), at most ``limit`` chars."""
    line = next((ln.strip() for ln in (text or "").splitlines() if ln.strip()), "")
    return (line[: limit - 1] + "…" if len(line) > limit else line) or None


def compare_url(base: str | None, head: str, environ: Mapping[str, str]) -> str | None:
    """The changelog link in CI (GitHub's compare view of the commits between ``base`` and ``head``)."""
    repository = environ.get("GITHUB_REPOSITORY")
    if not repository:
        return None
    server = environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    return f"{server}/{repository}/compare/{base}...{head}" if base else f"{server}/{repository}/commit/{head}"
