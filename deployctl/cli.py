"""The command line: parse, load config, call one use case, render, exit.

The only module that imports click. Heavy libraries (boto3, kubernetes) are
imported by the adapters inside the functions that need them, so ``--help``
stays fast.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from deployctl import __version__
from deployctl.console import Console, Result
from deployctl.errors import ConfigError, DeployctlError, ExitCode, UsageError
from deployctl.redact import Redactor

if TYPE_CHECKING:
    from deployctl.config import LoadedConfig
    from deployctl.runner import ProcessRunner

log = logging.getLogger(__name__)


@dataclass
class Session:
    """Per-invocation state on ``ctx.obj``: options, the console, the config (loaded on first use)."""

    config_option: str | None = None
    console: Console = field(default_factory=Console)
    command: str | None = None
    _config: LoadedConfig | None = None
    _runner: ProcessRunner | None = None

    @property
    def config(self) -> LoadedConfig:
        if self._config is None:
            # Imported here: pydantic's model construction is most of deployctl's import time,
            # and --help / --version never need the configuration.
            from deployctl.config import ConfigProblemsError, find_config, load

            try:
                path = find_config(Path.cwd(), self.config_option)
                self._config = load(path)
                sandbox_state = os.environ.get("DEPLOYCTL_SANDBOX")
                if sandbox_state:  # `eval "$(deployctl sandbox env)"`: every environment points at the sandbox
                    from deployctl.sandbox.session import overrides_from_state

                    self._config = load(path, overrides_from_state(Path(sandbox_state), self._config.settings))
            except ConfigProblemsError as exc:
                raise ConfigError(exc.problems, "fix the keys above, then re-run (see README: Configuration)") from None
        return self._config

    @property
    def runner(self) -> ProcessRunner:
        if self._runner is None:
            from deployctl.runner import ProcessRunner  # subprocess + threading: not needed for --help

            self._runner = ProcessRunner(redactor=self.console.redactor, verbose=self.console.verbosity >= 1)
        return self._runner

    def emit(self, result: Result, code: ExitCode = ExitCode.OK) -> int:
        self.console.result(result, ok=code in (ExitCode.OK, ExitCode.CHANGES))
        return int(code)


class EnvironmentType(click.ParamType[str]):
    """An environment name declared in the configuration; unknown names list the known ones."""

    name = "ENV"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:  # noqa: ARG002 (click's signature)
        session = ctx.find_object(Session) if ctx else None
        if session is None:
            return str(value)
        known = list(session.config.settings.environments)
        if value not in known:
            raise UsageError(f"unknown environment {value!r}", f"known environments: {', '.join(known)}")
        return str(value)


ENV = EnvironmentType()


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="Configuration file (default: $DEPLOYCTL_CONFIG, else the nearest pyproject.toml upward).",
)
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("-v", "--verbose", count=True, help="-v: tool output and progress; -vv: debug and tracebacks.")
@click.option("--no-color", is_flag=True, help="No ANSI colours (also when NO_COLOR is set).")
@click.version_option(__version__, "--version", prog_name="deployctl", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, output: str, verbose: int, no_color: bool) -> None:
    """Plan, apply, deploy and promote a Terraform + Helm app on EKS, one command per step.

    \b
    Example:
      deployctl plan dev && deployctl apply dev && deployctl deploy dev
      deployctl promote release-1.4.0
    """
    session: Session = ctx.ensure_object(Session)
    session.config_option = config_path
    session.console.output = output
    session.console.verbosity = verbose
    session.console.color = not no_color and "NO_COLOR" not in os.environ
    session.console.setup_logging()
    session.command = ctx.invoked_subcommand


@cli.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("show")
@click.argument("env", type=ENV, required=False)
@click.pass_obj
def config_show(session: Session, env: str | None) -> int:
    """Show the resolved configuration, for all environments or one.

    \b
    Example: deployctl config show prod
    """
    from deployctl.app.config_show import show

    session.command = "config show"
    return session.emit(show(session.config, env))


@cli.command()
@click.option("--no-config", is_flag=True, help="Check tools only; do not load the configuration.")
@click.pass_obj
def doctor(session: Session, no_config: bool) -> int:
    """Check installed tools and their versions, and that each environment's endpoint is reachable.

    \b
    Example: deployctl doctor --output json
    """
    from deployctl.app.doctor import doctor as run_doctor

    config = None if no_config else session.config
    result = run_doctor(session.runner, config)
    return session.emit(result, ExitCode.OK if result.healthy else ExitCode.FAILED)


@cli.group("ci")
def ci_group() -> None:
    """The pipeline's logic, for the workflow YAML to call."""


@ci_group.command("steps")
@click.option("--event", required=True, help="CI event: pull_request, push or workflow_dispatch.")
@click.option("--ref", required=True, help="Git ref, e.g. refs/heads/main or refs/tags/release-1.4.0.")
@click.pass_obj
def ci_steps(session: Session, event: str, ref: str) -> int:
    """Print the steps the pipeline runs for an event and ref.

    \b
    Example: deployctl ci steps --event push --ref refs/tags/release-1.4.0 -o json
    """
    from deployctl.app.ci import ci_steps as run_ci_steps

    session.command = "ci steps"
    return session.emit(run_ci_steps(session.config, event, ref))


@cli.command()
@click.option("--app", "app_name", help="App to build (default: the only one configured).")
@click.option("--context", "context_dir", default=".", show_default=True, help="Docker build context.")
@click.option("--push/--no-push", default=True, show_default=True, help="Push the image (CI) or load it locally.")
@click.option("--platform", "platforms", multiple=True, help="Target platform(s), e.g. linux/amd64.")
@click.pass_obj
def build(session: Session, app_name: str | None, context_dir: str, push: bool, platforms: tuple[str, ...]) -> int:
    """Build the app image once, tagged with the commit sha (and latest), and record the pushed digest.

    \b
    Example: deployctl build --push
    """
    from deployctl.app.build import build as run_build

    result = run_build(
        session.config, session.runner, app_name=app_name, context=Path(context_dir), push=push, platforms=platforms
    )
    return session.emit(result)


# --------------------------------------------------------------------------- terraform: plan / apply / destroy


@dataclass(frozen=True)
class _TerminalConfirm:
    """Shows what is about to change on stderr and asks for an answer to be typed back."""

    console: Console

    def __call__(self, lines: list[str], answer: str) -> bool:
        for line in lines:
            self.console.progress(line)
        typed = click.prompt(f"type {answer!r} to continue", default="", show_default=False, err=True)
        return str(typed).strip() == answer


def _tf_confirm(session: Session) -> _TerminalConfirm | None:
    """A confirmation only when stdin is a terminal: nothing prompts in pipelines."""
    return _TerminalConfirm(session.console) if sys.stdin.isatty() else None


_LOCK_TIMEOUT = click.option(
    "--lock-timeout",
    type=click.IntRange(0, 3600),
    metavar="SECONDS",
    help="Wait this long for the environment lock (default: the environment's lock_timeout_seconds).",
)


@cli.command("plan")
@click.argument("env", type=ENV)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 3 when there are changes, 0 when there are none.")
@click.pass_obj
def plan_command(session: Session, env: str, detailed_exitcode: bool) -> int:
    """Plan ENV's terraform and save the plan for `deployctl apply` (destroys and replacements are flagged).

    \b
    Example: deployctl plan dev --detailed-exitcode
    """
    from deployctl.app.base import Target
    from deployctl.app.plan import plan as run_plan

    session.command = "plan"
    result = run_plan(Target(session.config, env, session.runner, session.console))
    return session.emit(result, ExitCode.CHANGES if detailed_exitcode and result.has_changes else ExitCode.OK)


@cli.command("apply")
@click.argument("env", type=ENV)
@click.option(
    "--auto-approve", is_flag=True, help="Plan and apply in one step, no confirmation (refused for protected envs)."
)
@_LOCK_TIMEOUT
@click.pass_obj
def apply_command(session: Session, env: str, auto_approve: bool, lock_timeout: int | None) -> int:
    """Apply ENV's saved plan (made by `deployctl plan ENV` at this commit) under the environment lock.

    \b
    Example: deployctl plan prod && deployctl apply prod
    """
    from deployctl.app.apply import apply as run_apply
    from deployctl.app.base import Target

    session.command = "apply"
    target = Target(session.config, env, session.runner, session.console)
    return session.emit(
        run_apply(target, auto_approve=auto_approve, lock_timeout=lock_timeout, confirm=_tf_confirm(session))
    )


@cli.command("destroy")
@click.argument("env", type=ENV)
@click.option("--auto-approve", is_flag=True, help="Destroy without confirmation (not for protected envs).")
@click.option(
    "--allow-prod-destroy", is_flag=True, help="Allow destroying a protected env (the name must be typed back)."
)
@click.pass_obj
def destroy_command(session: Session, env: str, auto_approve: bool, allow_prod_destroy: bool) -> int:
    """Destroy everything ENV's terraform manages, after showing the plan and a confirmation.

    \b
    Example: deployctl destroy dev --auto-approve
    """
    from deployctl.app.base import Target
    from deployctl.app.destroy import destroy as run_destroy

    session.command = "destroy"
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false")
    result = run_destroy(
        Target(session.config, env, session.runner, session.console),
        auto_approve=auto_approve,
        allow_prod_destroy=allow_prod_destroy,
        ci=ci,
        confirm=_tf_confirm(session),
    )
    return session.emit(result)


@cli.group("lock")
def lock_group() -> None:
    """Show or break locks: the environment lock (status, break) or terraform's state lock (break --state)."""


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
    from deployctl.app.apply import break_lock
    from deployctl.app.base import Target

    session.command = "lock break"
    target = Target(session.config, env, session.runner, session.console)
    return session.emit(break_lock(target, state=state, lock_id=lock_id))


@cli.command()
@click.argument("tag")
@click.option("--to", "to_env", type=ENV, help="Target environment (default: the one with promote_from).")
@click.option("--app", "app_name", help="App to promote (default: the only one configured).")
@click.option("--dry-run", is_flag=True, help="Show the plan and the values diff; change nothing.")
@click.option("--skip-dev-check", is_flag=True, help="Promote a digest that does not run in the source env.")
@click.option("--allow-downgrade", is_flag=True, help="Promote a version not newer than the target's.")
@click.option("--reason", help="Why an override is used (required with one; recorded in history).")
@click.option("--commit", "git_commit", is_flag=True, help="Commit the values file change.")
@click.option("--no-deploy", is_flag=True, help="Retag and record the version, but do not deploy.")
@click.option("--lock-timeout", type=float, help="Seconds to wait for the environment lock (default: config).")
@click.option("--rollout-timeout", type=float, default=300.0, show_default=True, help="Seconds to wait for pods.")
@click.pass_obj
def promote(
    session: Session,
    tag: str,
    to_env: str | None,
    app_name: str | None,
    dry_run: bool,
    skip_dev_check: bool,
    allow_downgrade: bool,
    reason: str | None,
    git_commit: bool,
    no_deploy: bool,
    lock_timeout: float | None,
    rollout_timeout: float,
) -> int:
    """Run in prod the exact image (by digest) that main built for a release tag and dev runs.

    \b
    Example: deployctl promote release-1.4.0 --dry-run
    """
    from deployctl.app.promote import PromoteRequest
    from deployctl.app.promote import promote as run_promote

    request = PromoteRequest(
        tag=tag,
        to_env=to_env,
        app=app_name,
        dry_run=dry_run,
        skip_dev_check=skip_dev_check,
        allow_downgrade=allow_downgrade,
        reason=reason,
        commit=git_commit,
        deploy=not no_deploy,
        lock_timeout=lock_timeout,
        rollout_timeout=rollout_timeout,
    )
    return session.emit(run_promote(session.config, session.runner, session.console, request))


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
    from deployctl.app.history import history as run_history

    return session.emit(run_history(session.config, env, limit=limit, app=app_name))


@cli.group("sandbox")
def sandbox_group() -> None:
    """A local stand-in for AWS, the registry and the cluster (moto, OCI registries, kube-apiserver + kwok)."""


def _sandbox_config(session: Session) -> Any:
    """The configuration without sandbox overrides: the sandbox commands manage the sandbox itself."""
    from deployctl.config import ConfigProblemsError, find_config, load

    try:
        return load(find_config(Path.cwd(), session.config_option))
    except ConfigProblemsError as exc:
        raise ConfigError(exc.problems, "fix the keys above, then re-run (see README: Configuration)") from None


@sandbox_group.command("up")
@click.option("--registries", default=2, show_default=True, type=click.IntRange(1, 5), help="Registry instances.")
@click.option(
    "--only",
    "components",
    multiple=True,
    type=click.Choice(["moto", "registry", "cluster"]),
    help="Start only these components (repeatable; default: all).",
)
@click.pass_obj
def sandbox_up(session: Session, registries: int, components: tuple[str, ...]) -> int:
    """Start the sandbox in the background (survives this command); state in .deployctl/sandbox/.

    \b
    Example: deployctl sandbox up && eval "$(deployctl sandbox env)"
    """
    from deployctl.sandbox.lab import COMPONENTS
    from deployctl.sandbox.session import up

    session.command = "sandbox up"
    result = up(
        _sandbox_config(session),
        components=components or COMPONENTS,
        registries=registries,
        progress=session.console.progress,
    )
    return session.emit(result, ExitCode.OK if result.healthy else ExitCode.FAILED)


@sandbox_group.command("status")
@click.pass_obj
def sandbox_status(session: Session) -> int:
    """Probe each sandbox component and show its endpoint (exit 1 when one is unhealthy or it is down).

    \b
    Example: deployctl sandbox status --output json
    """
    from deployctl.sandbox.session import status

    session.command = "sandbox status"
    result = status(_sandbox_config(session))
    return session.emit(result, ExitCode.OK if result.healthy else ExitCode.FAILED)


@sandbox_group.command("env")
@click.pass_obj
def sandbox_env(session: Session) -> int:
    """Print `export K=V` lines that point later deployctl, terraform, helm and kubectl runs at the sandbox.

    \b
    Example: eval "$(deployctl sandbox env)"
    """
    from deployctl.sandbox.session import env

    session.command = "sandbox env"
    return session.emit(env(_sandbox_config(session)))


@sandbox_group.command("down")
@click.pass_obj
def sandbox_down(session: Session) -> int:
    """Stop every sandbox process and remove .deployctl/sandbox/.

    \b
    Example: deployctl sandbox down
    """
    from deployctl.sandbox.session import down

    session.command = "sandbox down"
    return session.emit(down(_sandbox_config(session)))


# --------------------------------------------------------------------------- helm: deploy / diff / status


@cli.command("deploy")
@click.argument("env", type=ENV)
@click.option("--app", "app_name", help="App to deploy (default: the only one configured).")
@click.option("--image-tag", metavar="TAG", help="Image tag to resolve (default: the current git commit's sha).")
@click.option("--digest", metavar="sha256:...", help="Deploy exactly this image digest.")
@click.option("--lock-timeout", type=click.FloatRange(0, 3600), metavar="SECONDS", help="Wait this long for the lock.")
@click.option(
    "--timeout", "rollout_timeout", type=click.FloatRange(1), default=600.0, show_default=True, metavar="SECONDS",
    help="Give up on the rollout after this long (a broken pod fails it at once).",
)  # fmt: skip
@click.pass_obj
def deploy_command(
    session: Session,
    env: str,
    app_name: str | None,
    image_tag: str | None,
    digest: str | None,
    lock_timeout: float | None,
    rollout_timeout: float,
) -> int:
    """Deploy the image of a commit (by digest) to ENV with helm and watch it until every pod is ready.

    \b
    Example: deployctl deploy dev --image-tag $(git rev-parse HEAD)
    """
    from deployctl.app.base import Target
    from deployctl.app.deploy import deploy as run_deploy

    session.command = "deploy"
    if image_tag is not None and digest is not None:
        raise UsageError("--image-tag and --digest are mutually exclusive", "pass one of them")
    target = Target(session.config, env, session.runner, session.console)
    result = run_deploy(
        target,
        app=app_name,
        image_tag=image_tag,
        digest=digest,
        lock_timeout=lock_timeout,
        rollout_timeout=rollout_timeout,
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

    from deployctl.app.base import Target
    from deployctl.app.diff import diff as run_diff

    session.command = "diff"
    result = run_diff(Target(session.config, env, session.runner, session.console), app_name, digest=digest)
    tty = getattr(session.console.out, "isatty", lambda: False)()
    result = replace(result, color=session.console.color and tty)
    return session.emit(result, ExitCode.CHANGES if detailed_exitcode and result.changed else ExitCode.OK)


@cli.command("status")
@click.argument("env", type=ENV)
@click.option("--app", "app_name", help="Only this app.")
@click.pass_obj
def status_command(session: Session, env: str, app_name: str | None) -> int:
    """Show what runs in ENV: release revision, image digest and commit, ready pods, match with the values file.

    \b
    Example: deployctl status prod --output json
    """
    from deployctl.app.base import Target
    from deployctl.app.status import status as run_status

    session.command = "status"
    return session.emit(run_status(Target(session.config, env, session.runner, session.console), app_name))


@lock_group.command("status")
@click.argument("env", type=ENV)
@click.pass_obj
def lock_status_command(session: Session, env: str) -> int:
    """Show who holds ENV's environment lock, since when, and its id (for `lock break --id`).

    \b
    Example: deployctl lock status prod
    """
    from deployctl.app.base import Target
    from deployctl.app.status import lock_status

    session.command = "lock status"
    return session.emit(lock_status(Target(session.config, env, session.runner, session.console)))


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the CLI and turns every outcome into a documented exit code."""
    session = Session(console=Console(redactor=Redactor()))
    try:
        code = cli.main(args=argv, prog_name="deployctl", standalone_mode=False, obj=session)
    except DeployctlError as exc:
        if session.console.verbosity >= 2:
            import traceback

            traceback.print_exc(file=sys.stderr)
        session.console.error(exc, session.command)
        return int(exc.exit_code)
    except click.exceptions.Exit as exc:  # --help, --version
        return int(exc.exit_code)
    except click.ClickException as exc:  # usage errors found by click itself
        session.console.error(UsageError(exc.format_message(), "see `deployctl COMMAND --help`"), session.command)
        return int(ExitCode.USAGE)
    except (KeyboardInterrupt, click.exceptions.Abort):
        sys.stderr.write("interrupted\n")
        return int(ExitCode.INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 (a bug: one line, the traceback only at -vv)
        if session.console.verbosity >= 2:
            import traceback

            traceback.print_exc(file=sys.stderr)
        session.console.error(
            DeployctlError(f"internal error: {type(exc).__name__}: {exc}", "re-run with -vv and report the traceback"),
            session.command,
        )
        return int(ExitCode.FAILED)
    return int(code) if isinstance(code, int) else 0
