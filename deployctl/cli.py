"""The command line: parse, load config, call one use case, render, exit.

The only module that imports click. Heavy libraries (boto3, kubernetes) are
imported by the adapters inside the functions that need them, so ``--help``
stays fast.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from deployctl import __version__
from deployctl.config import ConfigProblemsError, LoadedConfig, find_config, load
from deployctl.console import Console, Result
from deployctl.errors import ConfigError, DeployctlError, ExitCode, UsageError
from deployctl.redact import Redactor
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
            try:
                self._config = load(find_config(Path.cwd(), self.config_option))
            except ConfigProblemsError as exc:
                raise ConfigError(exc.problems, "fix the keys above, then re-run (see README: Configuration)") from None
        return self._config

    @property
    def runner(self) -> ProcessRunner:
        if self._runner is None:
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


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the CLI and turns every outcome into a documented exit code."""
    session = Session(console=Console(redactor=Redactor()))
    try:
        code = cli.main(args=argv, prog_name="deployctl", standalone_mode=False, obj=session)
    except DeployctlError as exc:
        if session.console.verbosity >= 2:
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
            traceback.print_exc(file=sys.stderr)
        session.console.error(
            DeployctlError(f"internal error: {type(exc).__name__}: {exc}", "re-run with -vv and report the traceback"),
            session.command,
        )
        return int(ExitCode.FAILED)
    return int(code) if isinstance(code, int) else 0
