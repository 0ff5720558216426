"""``deployctl plan ENV``: the terraform plan (saved for ``apply``) and, for deployable environments,
the helm diff against the live cluster, in one result.

The two overlap: terraform is a child process, the diff mostly waits on the API server.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from deployctl.app.context import EnvContext
from deployctl.app.steps.drift import environment_drift
from deployctl.app.steps.freeze import freeze_state
from deployctl.core.errors import DeployctlError
from deployctl.release.drift import Candidate, DiffResult
from deployctl.release.windows import FreezeState
from deployctl.terraform import saved_plan
from deployctl.terraform import workspace as infra
from deployctl.terraform.plan_summary import PlanSummary
from deployctl.terraform.plan_text import change_lines
from deployctl.terraform.saved_plan import PlanMetadata

HEX_SHA = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class TerraformPlan:
    """The terraform part of a plan."""

    root: str
    plan_file: str | None
    summary: PlanSummary
    metadata: PlanMetadata | None
    pull_request: bool = False  # -lock=false, never saved for apply
    state_read: bool = True  # False: a protected environment planned from a pull request, without its state

    def data(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "plan_file": self.plan_file,
            "pull_request": self.pull_request,
            "state_read": self.state_read,
            "changes": self.summary.has_changes,
            "summary": self.summary.counts(),
            "resource_changes": [c.to_dict() for c in self.summary.changes],
            "output_changes": list(self.summary.output_changes),
            "commit": self.metadata.commit if self.metadata else None,
            "created_at": self.metadata.created_at if self.metadata else None,
        }


@dataclass(frozen=True)
class PlanResult:
    """What ``plan`` found: the terraform plan, and for deployable environments the helm diff
    (rendered chart vs live cluster). ``helm_error`` says why the diff is missing (e.g. no cluster yet)."""

    env: str
    terraform: TerraformPlan | None
    helm: DiffResult | None = None
    helm_error: str | None = None
    freeze: FreezeState | None = None  # the change windows now (None: one cannot be, warned)
    command: str = "plan"

    @property
    def has_changes(self) -> bool:
        terraform = self.terraform is not None and self.terraform.summary.has_changes
        return terraform or (self.helm is not None and self.helm.changed)

    def data(self) -> Mapping[str, Any]:
        return {
            "env": self.env,
            "changes": self.has_changes,
            "terraform": self.terraform.data() if self.terraform else None,
            "helm": self.helm.data() if self.helm else None,
            "helm_error": self.helm_error,
            "freeze": self.freeze.data() if self.freeze else None,
        }

    def text(self) -> Sequence[str]:
        if self.terraform is None:
            lines = [f"{self.env}: no terraform root configured"]
        else:
            lines = [f"{self.env}: terraform: {self.terraform.summary.headline()}"]
            if self.terraform.pull_request:
                lines.append(f"{self.env}: {_pull_request_note(self.terraform.state_read)}")
            lines += change_lines(self.terraform.summary)
            if self.terraform.summary.has_changes and self.terraform.plan_file:
                lines.append(f"plan saved to {self.terraform.plan_file}; apply it with: deployctl apply {self.env}")
        if self.helm is not None:
            lines.append(f"{self.env}: helm diff (chart vs live cluster):")
            lines += [f"  {line}" for line in self.helm.text()]
        elif self.helm_error is not None:
            lines.append(f"{self.env}: helm diff unavailable: {self.helm_error}")
        if self.freeze is not None and self.freeze.frozen:
            lines.append(f"{self.env}: {self.freeze.describe()} (apply, deploy and promote are refused)")
        return lines


def plan(ctx: EnvContext, *, image_tag: str | None = None, pull_request: bool = False) -> PlanResult:
    """Plan ``ctx`` (terraform, saved with its metadata for ``apply``) and, for deployable
    environments, diff the chart against the live cluster at the same time. An environment deployed by
    commit (not a promotion target) renders each app with the image a deploy would roll out: the one built for
    the checked-out commit (or tagged ``image_tag``) where it exists, so the plan shows the image change.

    ``pull_request``: unreviewed code's plan, with a role that may write nothing and read no protected state:
    ``-lock=false``, nothing saved for ``apply``; a protected environment is planned without its state
    (``-refresh=false`` against an empty one: every resource shows as new; main's plan is the reviewed one)."""
    if not ctx.env.deployable:
        return replace(_plan_terraform(ctx, pull_request=pull_request), freeze=freeze_state(ctx))
    by_commit = ctx.env.promote_from is None or image_tag is not None
    # The workspace first: it assumes the environment's role (the one session), which the diff's cluster
    # access then shares; started together, both threads would find no session yet and assume it twice.
    prepared = ctx.terraform(pull_request=pull_request) if ctx.env.terraform is not None else None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="helm-diff") as pool:
        pending = pool.submit(
            lambda: environment_drift(ctx, candidates=_candidates(ctx, image_tag) if by_commit else None)
        )
        result = _plan_terraform(ctx, prepared)
        try:
            return replace(result, helm=pending.result(), freeze=freeze_state(ctx))
        except Exception as exc:  # noqa: BLE001 (the diff is advisory: it must never fail the terraform plan)
            text = exc.message if isinstance(exc, DeployctlError) else f"{type(exc).__name__}: {exc}"
            first = text.splitlines()[0]
            ctx.reporter.warn(f"helm diff skipped: {first}")
            return replace(result, helm_error=first, freeze=freeze_state(ctx))


def _candidates(ctx: EnvContext, image_tag: str | None) -> dict[str, Candidate]:
    """Per app, the image a deploy would resolve: tagged ``image_tag``, else the checked-out commit's."""
    try:
        tag = image_tag or ctx.head_commit()
    except DeployctlError as exc:
        problem = f"no commit to look up the image of: {exc.message}"
        return {name: Candidate("the checked-out commit", problem=problem) for name, _ in ctx.apps()}
    source = f"--image-tag {tag}" if image_tag else f"commit {tag[:12]}"
    sha = tag if HEX_SHA.fullmatch(tag) else None
    found = {}
    for name, app in ctx.apps():
        image = ctx.image(app, tag=tag)
        try:
            digest = ctx.endpoint(image).resolve(tag)
        except DeployctlError as exc:
            found[name] = Candidate(source, problem=f"{image.name}:{tag} not looked up: {exc.message.splitlines()[0]}")
            continue
        found[name] = Candidate(source, replace(image, digest=digest) if digest else None, sha)
    return found


def _plan_terraform(
    ctx: EnvContext, prepared: infra.Prepared | None = None, *, pull_request: bool = False
) -> PlanResult:
    if ctx.env.terraform is None:
        return PlanResult(env=ctx.name, terraform=None)
    prepared = prepared or ctx.terraform(pull_request=pull_request)
    if prepared.pull_request:
        return _plan_pull_request(ctx, prepared)
    saved_plan.discard_saved(prepared)  # a failed plan must never leave an older plan behind for apply
    summary = infra.make_plan(prepared, out=prepared.plan_file)
    metadata = saved_plan.save_metadata(prepared, summary, ctx.runner)
    return PlanResult(
        env=ctx.name,
        terraform=TerraformPlan(
            root=str(prepared.workspace.root),
            plan_file=_shown(ctx, prepared.plan_file),
            summary=summary,
            metadata=metadata,
        ),
    )


def _plan_pull_request(ctx: EnvContext, prepared: infra.Prepared) -> PlanResult:
    """A pull request's plan: summarized, then its file removed (nothing of a pull request is ever applied)."""
    try:
        summary = infra.make_plan(prepared, out=prepared.plan_file)
    finally:
        prepared.plan_file.unlink(missing_ok=True)
    root = str(prepared.workspace.root)
    terraform = TerraformPlan(root, None, summary, None, pull_request=True, state_read=not prepared.stateless)
    return PlanResult(env=ctx.name, terraform=terraform)


def _pull_request_note(state_read: bool) -> str:
    if state_read:
        return "pull request plan: -lock=false, not saved (apply uses main's plan)"
    return (
        "pull request plan of a protected environment: its state is not read (-refresh=false against none, so "
        "every resource shows as to add), -lock=false, not saved; main's plan is the reviewed one"
    )


def _shown(ctx: EnvContext, path: Path) -> str:
    try:
        return str(path.relative_to(ctx.config.root.resolve()))
    except ValueError:
        return str(path)
