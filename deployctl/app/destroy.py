"""``deployctl destroy ENV``: plan a destroy, show it, confirm, apply it under the environment lock.

Unprotected environments: ``--auto-approve`` or "yes" typed on a terminal. Protected
environments: refused unless ``--allow-prod-destroy`` AND the environment's name is typed
back on a terminal; never when ``CI`` is set.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deployctl.app.context import EnvContext
from deployctl.console import Confirm
from deployctl.core.errors import PolicyError, UsageError
from deployctl.terraform import adapter as terraform
from deployctl.terraform import args, saved_plan
from deployctl.terraform import workspace as infra
from deployctl.terraform.plan_summary import PlanSummary
from deployctl.terraform.plan_text import change_lines
from deployctl.terraform.workspace import DESTROY_PLAN_FILE


@dataclass(frozen=True)
class DestroyResult:
    env: str
    summary: PlanSummary
    destroyed: bool
    duration: float
    command: str = "destroy"

    def data(self) -> Mapping[str, Any]:
        return {
            "env": self.env,
            "destroyed": self.destroyed,
            "summary": self.summary.counts(),
            "resource_changes": [c.to_dict() for c in self.summary.changes],
            "duration_seconds": round(self.duration, 1),
        }

    def text(self) -> Sequence[str]:
        if not self.destroyed:
            return [f"{self.env}: nothing to destroy"]
        return [f"{self.env}: destroyed {self.summary.destroy} resource(s) ({self.duration:.1f}s)"]


def destroy(
    ctx: EnvContext,
    *,
    auto_approve: bool = False,
    allow_prod_destroy: bool = False,
    ci: bool = False,
    lock_timeout: int | None = None,
    confirm: Confirm | None = None,
) -> DestroyResult:
    started = time.monotonic()
    name = ctx.name
    env = ctx.env
    if env.protected:
        problems = []
        if not allow_prod_destroy:
            problems.append("--allow-prod-destroy was not passed")
        if ci:
            problems.append("CI is set (protected environments are never destroyed from CI)")
        if confirm is None:
            problems.append("stdin is not a terminal (the environment name must be typed back)")
        if problems:
            raise PolicyError(
                f"refusing to destroy protected environment {name!r}: " + "; ".join(problems),
                f"from a terminal, outside CI: deployctl destroy {name} --allow-prod-destroy, then type {name!r}",
            )
        answer = name
    else:
        if not auto_approve and confirm is None:
            raise UsageError(
                f"destroying {name!r} needs a confirmation and stdin is not a terminal",
                f"pass --auto-approve: deployctl destroy {name} --auto-approve",
            )
        answer = "yes"
    prepared = ctx.terraform()
    out = prepared.plan_dir / DESTROY_PLAN_FILE
    with ctx.locked(f"deployctl destroy {name}", lock_timeout):
        try:
            summary = infra.make_plan(prepared, out=out, destroy=True)
            if not summary.changes:
                return DestroyResult(name, summary, destroyed=False, duration=time.monotonic() - started)
            if confirm is not None and (env.protected or not auto_approve):
                lines = [f"{name}: DESTROY: {summary.headline()}", *change_lines(summary)]
                if not confirm(lines, answer):
                    raise PolicyError(f"not confirmed: nothing was destroyed in {name!r}", None)
            with ctx.reporter.phase(f"{name}: terraform destroy"):
                ctx.fence()  # the environment lock is still this run's
                terraform.apply(prepared.workspace, args.apply_args(plan=out, lock_timeout=lock_timeout))
        finally:
            out.unlink(missing_ok=True)
        saved_plan.discard_saved(prepared)  # any saved plan was made against the state that is now gone
    return DestroyResult(name, summary, destroyed=True, duration=time.monotonic() - started)
