"""``deployctl apply ENV``: apply the saved, verified plan of ENV under the environment lock.

Protected environments (prod) only change through a saved plan that still matches the
checkout, the configuration and the terraform files; ``--auto-approve`` is refused there.
Elsewhere ``--auto-approve`` plans and applies in one step. A plan applies once: its file
is removed after a successful apply.

Also here: ``lock break`` (the environment lock, or terraform's state lock with ``--state``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from deployctl import terraform
from deployctl.app.base import Target
from deployctl.app.plan import (
    Prepared,
    change_lines,
    discard_saved,
    ensure_init,
    load_saved,
    make_plan,
    prepare,
    verify_saved,
)
from deployctl.errors import PolicyError, UsageError
from deployctl.terraform import PlanSummary

# Shows ``lines`` (what is about to happen) and asks for ``answer`` to be typed; True when it was.
# None means stdin is not a terminal: nothing may prompt.
Confirm = Callable[[list[str], str], bool]


@dataclass(frozen=True)
class ApplyResult:
    env: str
    summary: PlanSummary
    applied: bool
    source: str  # "saved plan" | "planned now"
    commit: str | None
    duration: float
    command: str = "apply"

    def data(self) -> Mapping[str, Any]:
        return {
            "env": self.env,
            "applied": self.applied,
            "source": self.source,
            "commit": self.commit,
            "summary": self.summary.counts(),
            "resource_changes": [c.to_dict() for c in self.summary.changes],
            "duration_seconds": round(self.duration, 1),
        }

    def text(self) -> Sequence[str]:
        if not self.applied:
            return [f"{self.env}: nothing to apply (no changes)"]
        return [
            f"{self.env}: applied {self.source}: {self.summary.headline()} ({self.duration:.1f}s)",
            *change_lines(self.summary),
        ]


def apply(
    target: Target,
    *,
    auto_approve: bool = False,
    lock_timeout: int | None = None,
    confirm: Confirm | None = None,
) -> ApplyResult:
    """Apply ENV's saved plan (or, with ``auto_approve`` on an unprotected env, plan and apply now)."""
    started = time.monotonic()
    env = target.env
    name = target.name
    if env.protected and auto_approve:
        raise PolicyError(
            f"--auto-approve is refused for protected environment {name!r}: it changes only through a reviewed plan",
            f"run `deployctl plan {name}`, review it, then `deployctl apply {name}` (without --auto-approve)",
        )
    prepared = prepare(target)
    saved = None if auto_approve else load_saved(prepared)
    if saved is None and env.protected:
        raise PolicyError(
            f"no saved plan for protected environment {name!r}: it changes only through a reviewed plan",
            f"run `deployctl plan {name}`, review it, then `deployctl apply {name}`",
        )
    if saved is None and not auto_approve and confirm is None:
        raise UsageError(
            f"no saved plan for {name!r} and stdin is not a terminal, so nothing can be confirmed",
            f"run `deployctl plan {name}` first, or pass --auto-approve to plan and apply in one step",
        )
    if saved is not None:
        verify_saved(target, prepared, saved)  # before taking the lock: a refusal changes nothing
    elif auto_approve and load_saved(prepared) is not None:
        target.reporter.warn(f"{name}: --auto-approve plans afresh; the saved plan is discarded")

    from deployctl.lock import EnvironmentLock

    timeout = lock_timeout if lock_timeout is not None else env.lock_timeout_seconds
    lock = EnvironmentLock(name, env)
    with lock.hold(
        f"deployctl apply {name}",
        timeout=timeout,
        on_wait=lambda held: target.reporter.progress(f"{name}: waiting for the lock held by {held.describe()}"),
        on_takeover=lambda held: target.reporter.warn(f"{name}: took over a stale lock of {held.describe()}"),
    ):
        if saved is not None:
            ensure_init(target, prepared)
            summary = terraform.summarize(terraform.show(prepared.workspace, prepared.plan_file))
            source = "saved plan"
            commit = saved.commit
            if confirm is not None and not auto_approve:
                _confirm(target, confirm, summary, "yes")
        else:
            discard_saved(prepared)
            summary = make_plan(target, prepared, out=prepared.plan_file)
            source = "planned now"
            commit = None
            if confirm is not None and not auto_approve:
                _confirm(target, confirm, summary, "yes")
        if not summary.has_changes:
            discard_saved(prepared)
            return ApplyResult(name, summary, applied=False, source=source, commit=commit, duration=0.0)
        _apply_plan(target, prepared, lock_timeout)
    return ApplyResult(name, summary, applied=True, source=source, commit=commit, duration=time.monotonic() - started)


def _confirm(target: Target, confirm: Confirm, summary: PlanSummary, answer: str) -> None:
    lines = [f"{target.name}: terraform: {summary.headline()}", *change_lines(summary)]
    if summary.has_changes and not confirm(lines, answer):
        raise PolicyError(f"not confirmed: nothing was applied to {target.name!r}", None)


def _apply_plan(target: Target, prepared: Prepared, lock_timeout: int | None) -> None:
    argv = terraform.apply_args(plan=prepared.plan_file, lock_timeout=lock_timeout)
    with target.reporter.phase(f"{target.name}: terraform apply"):
        terraform.apply(prepared.workspace, argv)
    discard_saved(prepared)  # a plan applies once


# --------------------------------------------------------------------------- lock break


@dataclass(frozen=True)
class LockBreakResult:
    env: str
    kind: str  # "environment" | "state"
    removed: Mapping[str, Any] | None
    lock_id: str | None
    command: str = "lock break"

    def data(self) -> Mapping[str, Any]:
        return {"env": self.env, "kind": self.kind, "lock_id": self.lock_id, "removed": self.removed}

    def text(self) -> Sequence[str]:
        if self.kind == "state":
            return [f"{self.env}: terraform state lock {self.lock_id} removed"]
        if self.removed is None:
            return [f"{self.env}: not locked"]
        return [f"{self.env}: environment lock {self.removed.get('id')} removed (held by {self.removed.get('owner')})"]


def break_lock(target: Target, *, state: bool = False, lock_id: str | None = None) -> LockBreakResult:
    """Remove the environment lock (default), or terraform's state lock ``lock_id`` with ``state``."""
    if not state:
        from deployctl.lock import EnvironmentLock

        removed = EnvironmentLock(target.name, target.env).break_lock(lock_id)
        return LockBreakResult(target.name, "environment", asdict(removed) if removed else None, lock_id)
    if not lock_id:
        raise UsageError(
            "--state needs --id: the id of terraform's state lock",
            'the id is in the error that reported the lock ("lock id ...")',
        )
    prepared = prepare(target)
    target.reporter.warn(
        f"{target.name}: force-unlocking terraform state lock {lock_id}: if its holder is still running, "
        "two runs may now write the state at once"
    )
    ensure_init(target, prepared)
    terraform.force_unlock(prepared.workspace, lock_id)
    return LockBreakResult(target.name, "state", None, lock_id)
