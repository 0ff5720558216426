"""Commands on what runs: build, deploy, diff, status, promote, verify, history."""

from __future__ import annotations

from pathlib import Path

import click

from deployctl.cli.options import LOCK_TIMEOUT, ROLLOUT_TIMEOUT, rollout_timeout_alias
from deployctl.cli.root import cli
from deployctl.cli.session import ENV, Session, freeze_reason
from deployctl.core.errors import ExitCode, UsageError


@cli.command()
@click.option("--app", "app_name", help="App to build (default: the only one configured).")
@click.option("--context", "context_dir", default=".", show_default=True, help="Docker build context.")
@click.option("--push/--no-push", default=True, show_default=True, help="Push the image (CI) or load it locally.")
@click.option("--platform", "platforms", multiple=True, help="Target platform(s), e.g. linux/amd64.")
@click.option(
    "--latest/--no-latest",
    default=None,
    help="Also push the moving tag 'latest'. Default: only to an ECR repository whose tag mutability lets latest "
    "move (checked before building); another registry only with --latest.",
)
@click.pass_obj
def build(
    session: Session,
    app_name: str | None,
    context_dir: str,
    push: bool,
    platforms: tuple[str, ...],
    latest: bool | None,
) -> int:
    """Build the app image once per commit, tagged with the commit sha ('latest' only where it may move), and
    record the pushed digest.

    \b
    Example: deployctl build --push
    """
    from deployctl.app.build import build as run_build

    result = run_build(
        session.config,
        session.runner,
        app_name=app_name,
        context=Path(context_dir),
        push=push,
        latest=latest,
        platforms=platforms,
    )
    return session.emit(result)


@cli.command("deploy")
@click.argument("env", type=ENV)
@click.option("--app", "app_name", help="Deploy only this app (default: every app, in `needs` order).")
@click.option("--image-tag", metavar="TAG", help="Image tag to resolve (default: the current git commit's sha).")
@click.option("--digest", metavar="sha256:...", help="Deploy exactly this image digest.")
@click.option(
    "--allow-unpromoted", is_flag=True, help="Deploy a digest no promotion brought to ENV (needs --reason; recorded)."
)
@click.option("--override-freeze", is_flag=True, help="Deploy during a change window (needs --reason; recorded).")
@click.option("--reason", help="Why --allow-unpromoted or --override-freeze is used (recorded in the history).")
@LOCK_TIMEOUT
@ROLLOUT_TIMEOUT
@rollout_timeout_alias
@click.pass_obj
def deploy_command(
    session: Session,
    env: str,
    app_name: str | None,
    image_tag: str | None,
    digest: str | None,
    allow_unpromoted: bool,
    override_freeze: bool,
    reason: str | None,
    lock_timeout: int | None,
    rollout_timeout: int | None,
    old_timeout: int | None,
) -> int:
    """Deploy the image of a commit (by digest) to ENV with helm and watch it until every pod is ready.

    \b
    Example: deployctl deploy dev --image-tag $(git rev-parse HEAD)
    """
    from deployctl.app.deploy import deploy

    session.command = "deploy"
    if image_tag is not None and digest is not None:
        raise UsageError("--image-tag and --digest are mutually exclusive", "pass one of them")
    if allow_unpromoted and not (reason or "").strip():
        raise UsageError(
            "--allow-unpromoted needs --reason TEXT", "the reason is recorded in the environment's history"
        )
    result = deploy(
        session.env(env),
        app=app_name,
        image_tag=image_tag,
        digest=digest,
        lock_timeout=lock_timeout,
        rollout_timeout=float(rollout_timeout or old_timeout or session.env(env).env.rollout_timeout_seconds),
        allow_unpromoted=reason if allow_unpromoted else None,
        override_freeze=freeze_reason(override_freeze, reason),
    )
    return session.emit(result)


@cli.command("diff")
@click.argument("env", type=ENV)
@click.option("--app", "app_name", help="Only this app.")
@click.option("--digest", metavar="sha256:...", help="Render with this image digest (default: the live one).")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 3 when the cluster differs from the chart.")
@click.pass_obj
def diff_command(session: Session, env: str, app_name: str | None, digest: str | None, detailed_exitcode: bool) -> int:
    """Show how the live objects in ENV's cluster differ from the chart rendered with ENV's values.

    \b
    Example: deployctl diff prod --detailed-exitcode
    """
    from dataclasses import replace

    from deployctl.app.diff import diff

    session.command = "diff"
    result = diff(session.env(env), app_name, digest=digest)
    tty = getattr(session.console.out, "isatty", lambda: False)()
    result = replace(result, color=session.console.color and tty)
    return session.emit(result, ExitCode.CHANGES if detailed_exitcode and result.changed else ExitCode.OK)


@cli.command("status")
@click.argument("env", type=ENV)
@click.option("--app", "app_name", help="Only this app.")
@click.pass_obj
def status_command(session: Session, env: str, app_name: str | None) -> int:
    """Show what runs in ENV and whether it is healthy (exit 1 when an app is not): release, rollout, digest.

    \b
    Example: deployctl status prod --output json
    """
    from deployctl.app.status import status

    session.command = "status"
    result = status(session.env(env), app_name)
    return session.emit(result, ExitCode.OK if result.healthy else ExitCode.FAILED)


@cli.command()
@click.argument("tag")
@click.option("--to", "to_env", type=ENV, help="Target environment (default: the one with promote_from).")
@click.option("--app", "app_name", help="Promote only this app (default: every app of the release).")
@click.option("--dry-run", is_flag=True, help="Show the plan and the values diff; change nothing.")
@click.option(
    "--skip-dev-check",
    is_flag=True,
    help="Promote a digest the source env has no healthy rollout of (never one that failed there; needs --reason).",
)
@click.option("--allow-downgrade", is_flag=True, help="Promote a version not newer than the target's.")
@click.option("--allow-local-tag", is_flag=True, help="Promote a tag the remote (origin) does not have.")
@click.option("--override-freeze", is_flag=True, help="Promote during a change window (needs --reason; recorded).")
@click.option("--reason", help="Why an override is used (required with one; recorded in history).")
@click.option("--commit", "git_commit", is_flag=True, help="Commit the values file change.")
@click.option("--push", is_flag=True, help="Commit the values file change and push it to the main branch (rebasing).")
@click.option("--no-deploy", is_flag=True, help="Retag and record the version, but do not deploy.")
@LOCK_TIMEOUT
@ROLLOUT_TIMEOUT
@click.pass_obj
def promote(
    session: Session,
    tag: str,
    to_env: str | None,
    app_name: str | None,
    dry_run: bool,
    skip_dev_check: bool,
    allow_downgrade: bool,
    allow_local_tag: bool,
    override_freeze: bool,
    reason: str | None,
    git_commit: bool,
    push: bool,
    no_deploy: bool,
    lock_timeout: int | None,
    rollout_timeout: int | None,
) -> int:
    """Run in prod the exact image (by digest) that main built for a release tag and dev runs.

    \b
    Example: deployctl promote release-1.4.0 --dry-run
    """
    from deployctl.app.promote import promote as run_promote
    from deployctl.promotion.request import PromoteRequest

    request = PromoteRequest(
        tag=tag,
        to_env=to_env,
        app=app_name,
        dry_run=dry_run,
        skip_dev_check=skip_dev_check,
        allow_downgrade=allow_downgrade,
        allow_local_tag=allow_local_tag,
        reason=reason,
        commit=git_commit,
        push=push,
        deploy=not no_deploy,
        lock_timeout=lock_timeout,
        rollout_timeout=rollout_timeout,
    )
    return session.emit(run_promote(session.contexts, request, override_freeze=freeze_reason(override_freeze, reason)))


@cli.command("verify")
@click.argument("env", type=ENV)
@click.option("--app", "app_name", help="Only this app (default: every app, in `needs` order).")
@LOCK_TIMEOUT
@click.pass_obj
def verify_command(session: Session, env: str, app_name: str | None, lock_timeout: int | None) -> int:
    """Run ENV's checks (helm test, HTTP, metrics) against what runs now and record the result for the gate.

    \b
    Example: deployctl verify dev --app api
    """
    from deployctl.app.verify import verify

    session.command = "verify"
    return session.emit(verify(session.env(env), app=app_name, lock_timeout=lock_timeout))


@cli.command()
@click.argument("env", type=ENV)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Newest N entries.")
@click.option("--app", "app_name", help="Only this app's entries.")
@click.pass_obj
def history(session: Session, env: str, limit: int, app_name: str | None) -> int:
    """Show what happened to an environment (deploys, promotions, recoveries), newest first.

    \b
    Example: deployctl history prod --limit 5 -o json
    """
    import shutil

    from deployctl.app.history import WIDTH
    from deployctl.app.history import history as run_history

    width = shutil.get_terminal_size((WIDTH, 24)).columns  # $COLUMNS, the terminal, else WIDTH
    return session.emit(run_history(session.env(env), limit=limit, app=app_name, width=width))


@cli.command("board")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the page here (default: STATE_DIR/board.html; with --markdown: print it).",
)
@click.option("--markdown", is_flag=True, help="Markdown (for a CI job summary) instead of HTML.")
@click.option("--env", "env_names", type=ENV, multiple=True, help="Only this environment (repeatable; default: all).")
@click.option("--limit", type=click.IntRange(1, 200), default=10, show_default=True, help="Rollouts in each timeline.")
@click.pass_obj
def board_command(session: Session, out: Path | None, markdown: bool, env_names: tuple[str, ...], limit: int) -> int:
    """Write the release board: what runs where (health, drift), recent rollouts, what waits to be promoted.

    \b
    Example: deployctl board --markdown >> "$GITHUB_STEP_SUMMARY"
    """
    from deployctl.app.board import board

    session.command = "board"
    return session.emit(board(session.contexts, envs=env_names, limit=limit, out=out, markdown=markdown))
