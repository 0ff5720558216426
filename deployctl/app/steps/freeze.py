"""Change windows before a rollout: the freeze gate, its override and the freeze state shown."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from deployctl.app.context import EnvContext
from deployctl.core.errors import PolicyError, UsageError
from deployctl.ledger.entry import Entry, Override
from deployctl.notify import events
from deployctl.release import windows

OVERRIDE_FREEZE = "--override-freeze"


def require_window(
    ctx: EnvContext, action: str, override_reason: str | None, *, now: datetime | None = None
) -> Override | None:
    """Refuse ``action`` (promote, deploy, apply) into ``ctx``'s environment while one of its change windows
    (``environments.NAME.freeze``) is in force: exit 4, naming the window and when the freeze ends. With
    ``override_reason`` it proceeds: recorded in the ledger (an ``override`` entry), said on stderr and announced
    (``freeze-overridden``); the returned override goes on the command's own entries. None: no window in force."""
    try:
        found = windows.state(ctx.env.freeze, now or datetime.now(UTC))
    except windows.WindowError as exc:
        raise UsageError(f"environments.{ctx.name}.{exc}", "fix the window in the configuration") from None
    if not found.frozen:
        return None
    reason = (override_reason or "").strip()
    if not reason:
        raise PolicyError(
            f"{action} into {ctx.name} refused: {ctx.name} is {found.describe()}",
            f"wait until the freeze ends, or pass {OVERRIDE_FREEZE} --reason TEXT (recorded in the history)",
            details={"freeze": found.data()},
        )
    override = Override(OVERRIDE_FREEZE, reason)
    ctx.reporter.warn(f"{action} into {ctx.name} during a freeze ({found.describe()}): overridden: {reason}")
    names = ", ".join(repr(w.name) for w in found.active)
    if ctx.env.terraform is not None:  # the ledger lives in the state bucket; apply records nothing else there
        ends = found.until.isoformat() if found.until else "not within a year"
        message = f"{action} during the freeze {names} (ends {ends})"
        entry = Entry(env=ctx.name, app="*", action="override", outcome="succeeded", message=message)
        ctx.record(replace(entry, overrides=(override,)))
    ctx.announce(events.freeze_overridden(ctx.name, action, names, reason))
    return override


def freeze_state(ctx: EnvContext) -> windows.FreezeState | None:
    """``ctx``'s change windows now, for what only reads (``status``, ``plan``): None, and a warning, when one
    of them cannot be (``require_window`` refuses the changes then)."""
    try:
        return windows.state(ctx.env.freeze, datetime.now(UTC))
    except windows.WindowError as exc:
        ctx.reporter.warn(f"environments.{ctx.name}.{exc}: fix the window in the configuration")
        return None
