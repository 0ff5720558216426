"""Commands on an environment's infrastructure: plan, apply, destroy, and the locks."""

from __future__ import annotations

import os

import click

from deployctl.cli.options import LOCK_TIMEOUT
from deployctl.cli.root import cli
from deployctl.cli.session import ENV, Session, freeze_reason, terminal_confirm
from deployctl.core.errors import ExitCode

# GitHub events whose runs are unreviewed code: their plan roles may write nothing and read no protected state.
PULL_REQUEST_EVENTS = ("pull_request", "pull_request_target")


@cli.command("plan")
@click.argument("env", type=ENV)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 3 when there are changes, 0 when there are none.")
@click.option(
    "--image-tag",
    metavar="TAG",
    help="Show the image a deploy of TAG would roll out (default: the commit's image, if built).",
)
@click.option(
    "--pr/--no-pr",
    "pull_request",
    default=None,
    help="A pull request's plan: -lock=false, not saved; a protected environment without its state "
    "(default: on when GITHUB_EVENT_NAME is pull_request or pull_request_target).",
)
@click.pass_obj
def plan_command(
    session: Session, env: str, detailed_exitcode: bool, image_tag: str | None, pull_request: bool | None
) -> int:
    """Plan ENV's terraform and save the plan for `deployctl apply` (destroys and replacements are flagged).

    \b
    Example: deployctl plan dev --detailed-exitcode
    """
    from deployctl.app.plan import plan

    session.command = "plan"
    if pull_request is None:
        pull_request = os.environ.get("GITHUB_EVENT_NAME") in PULL_REQUEST_EVENTS
    result = plan(session.env(env), image_tag=image_tag, pull_request=pull_request)
    return session.emit(result, ExitCode.CHANGES if detailed_exitcode and result.has_changes else ExitCode.OK)


@cli.command("bootstrap")
@click.argument("env", type=ENV)
@click.pass_obj
def bootstrap_command(session: Session, env: str) -> int:
    """Create ENV's terraform state bucket before its first plan: versioned, encrypted, private (idempotent).

    \b
    Example: deployctl bootstrap shared
    """
    from deployctl.app.bootstrap import bootstrap

    session.command = "bootstrap"
    return session.emit(bootstrap(session.env(env)))


@cli.command("apply")
@click.argument("env", type=ENV)
@click.option(
    "--auto-approve", is_flag=True, help="Plan and apply in one step, no confirmation (refused for protected envs)."
)
@LOCK_TIMEOUT
@click.option("--override-freeze", is_flag=True, help="Apply during a change window (needs --reason; recorded).")
@click.option("--reason", help="Why --override-freeze is used (recorded in the history and announced).")
@click.pass_obj
def apply_command(
    session: Session, env: str, auto_approve: bool, lock_timeout: int | None, override_freeze: bool, reason: str | None
) -> int:
    """Apply ENV's saved plan (made by `deployctl plan ENV` at this commit) under the environment lock.

    \b
    Example: deployctl plan prod && deployctl apply prod
    """
    from deployctl.app.apply import apply

    session.command = "apply"
    result = apply(
        session.env(env),
        auto_approve=auto_approve,
        lock_timeout=lock_timeout,
        confirm=terminal_confirm(session),
        override_freeze=freeze_reason(override_freeze, reason),
    )
    return session.emit(result)


@cli.command("destroy")
@click.argument("env", type=ENV)
@click.option("--auto-approve", is_flag=True, help="Destroy without confirmation (not for protected envs).")
@click.option(
    "--allow-prod-destroy", is_flag=True, help="Allow destroying a protected env (the name must be typed back)."
)
@LOCK_TIMEOUT
@click.pass_obj
def destroy_command(
    session: Session, env: str, auto_approve: bool, allow_prod_destroy: bool, lock_timeout: int | None
) -> int:
    """Destroy everything ENV's terraform manages, after showing the plan and a confirmation.

    \b
    Example: deployctl destroy dev --auto-approve
    """
    from deployctl.app.destroy import destroy

    session.command = "destroy"
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false")
    result = destroy(
        session.env(env),
        auto_approve=auto_approve,
        allow_prod_destroy=allow_prod_destroy,
        ci=ci,
        lock_timeout=lock_timeout,
        confirm=terminal_confirm(session),
    )
    return session.emit(result)


@cli.group("lock")
def lock_group() -> None:
    """Show or break locks: the environment lock (status, break) or terraform's state lock (break --state)."""


@lock_group.command("status")
@click.argument("env", type=ENV)
@click.pass_obj
def lock_status_command(session: Session, env: str) -> int:
    """Show who holds ENV's environment lock, since when, and its id (for `lock break --id`).

    \b
    Example: deployctl lock status prod
    """
    from deployctl.app.locks import lock_status

    session.command = "lock status"
    return session.emit(lock_status(session.env(env)))


@lock_group.command("break")
@click.argument("env", type=ENV)
@click.option("--id", "lock_id", metavar="ID", help="Only break the lock if it still has this id.")
@click.option("--state", is_flag=True, help="Break terraform's state lock ID (terraform force-unlock); needs --id.")
@click.pass_obj
def lock_break(session: Session, env: str, lock_id: str | None, state: bool) -> int:
    """Remove ENV's lock left by a dead run (the environment lock; --state for terraform's state lock).

    \b
    Example: deployctl lock break dev --state --id 0b7a3c1e-...
    """
    from deployctl.app.locks import break_lock

    session.command = "lock break"
    return session.emit(break_lock(session.env(env), state=state, lock_id=lock_id))
