"""``deployctl apply ENV``: apply the saved, verified plan of ENV under the environment lock.

Protected environments (prod) only change through a saved plan that still matches the
checkout, the configuration and the terraform files; ``--auto-approve`` is refused there.
Elsewhere ``--auto-approve`` plans and applies in one step. A plan applies once: its file
is removed after a successful apply.

"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deployctl.app.context import EnvContext
from deployctl.app.steps.freeze import require_window
from deployctl.console import Confirm
from deployctl.core.errors import PolicyError, UsageError
from deployctl.terraform import adapter as terraform
from deployctl.terraform import args, plan_summary, saved_plan
from deployctl.terraform import workspace as infra
from deployctl.terraform.plan_summary import PlanSummary
from deployctl.terraform.plan_text import change_lines
from deployctl.terraform.workspace import Prepared


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
    ctx: EnvContext,
    *,
    auto_approve: bool = False,
    lock_timeout: int | None = None,
    confirm: Confirm | None = None,
    override_freeze: str | None = None,
) -> ApplyResult:
    """Apply ENV's saved plan (or, with ``auto_approve`` on an unprotected env, plan and apply now). Refused while
    a change window of the environment is in force, unless ``override_freeze`` (the reason) is given."""
    started = time.monotonic()
    env = ctx.env
    name = ctx.name
    if env.protected and auto_approve:
        raise PolicyError(
            f"--auto-approve is refused for protected environment {name!r}: it changes only through a reviewed plan",
            f"run `deployctl plan {name}`, review it, then `deployctl apply {name}` (without --auto-approve)",
        )
    prepared = ctx.terraform()
    saved = None if auto_approve else saved_plan.load_saved(prepared)
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
        saved_plan.verify_saved(prepared, saved, ctx.runner)  # before taking the lock: a refusal changes nothing
    elif auto_approve and saved_plan.load_saved(prepared) is not None:
        ctx.reporter.warn(f"{name}: --auto-approve plans afresh; the saved plan is discarded")

    require_window(ctx, "apply", override_freeze)
    with ctx.locked(f"deployctl apply {name}", lock_timeout):
        if saved is not None:
            infra.ensure_init(prepared)
            summary = plan_summary.summarize(terraform.show(prepared.workspace, prepared.plan_file))
            source = "saved plan"
            commit = saved.commit
            if confirm is not None and not auto_approve:
                _confirm(name, confirm, summary, "yes")
        else:
            saved_plan.discard_saved(prepared)
            summary = infra.make_plan(prepared, out=prepared.plan_file)
            source = "planned now"
            commit = None
            if confirm is not None and not auto_approve:
                _confirm(name, confirm, summary, "yes")
        if not summary.has_changes:
            saved_plan.discard_saved(prepared)
            return ApplyResult(name, summary, applied=False, source=source, commit=commit, duration=0.0)
        _apply_plan(ctx, prepared, lock_timeout)
    return ApplyResult(name, summary, applied=True, source=source, commit=commit, duration=time.monotonic() - started)


def _confirm(name: str, confirm: Confirm, summary: PlanSummary, answer: str) -> None:
    lines = [f"{name}: terraform: {summary.headline()}", *change_lines(summary)]
    if summary.has_changes and not confirm(lines, answer):
        raise PolicyError(f"not confirmed: nothing was applied to {name!r}", None)


def _apply_plan(ctx: EnvContext, prepared: Prepared, lock_timeout: int | None) -> None:
    argv = args.apply_args(plan=prepared.plan_file, lock_timeout=lock_timeout)
    with ctx.reporter.phase(f"{ctx.name}: terraform apply"):
        ctx.fence()  # the environment lock is still this run's
        terraform.apply(prepared.workspace, argv)
    saved_plan.discard_saved(prepared)  # a plan applies once
