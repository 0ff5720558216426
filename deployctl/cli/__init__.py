"""The command line: parse, load config, call one use case, render, exit.

The only package that imports click. Heavy libraries (boto3, kubernetes) are imported by
the adapters inside the functions that need them, so ``--help`` stays fast. Commands live
in ``root`` (global options, config, doctor, ci), ``terraform_commands``, ``release_commands``
and ``sandbox_commands``; ``main`` turns every outcome into a documented exit code.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import click

from deployctl.cli import release_commands, sandbox_commands, terraform_commands
from deployctl.cli.root import cli
from deployctl.cli.session import Session
from deployctl.console import Console
from deployctl.errors import DeployctlError, ExitCode, UsageError
from deployctl.redact import Redactor

__all__ = ["cli", "main", "release_commands", "sandbox_commands", "terraform_commands"]


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the CLI and turns every outcome into a documented exit code."""
    session = Session(console=Console(redactor=Redactor()))
    previous = _stop_on_sigterm()
    try:
        return _run(session, argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(session: Session, argv: list[str] | None) -> int:
    try:
        code = cli.main(args=argv, prog_name="deployctl", standalone_mode=False, obj=session)
    except DeployctlError as exc:
        return _fail(session, exc)
    except click.exceptions.Exit as exc:  # --help, --version
        return int(exc.exit_code)
    except click.ClickException as exc:  # usage errors found by click itself
        return _fail(session, UsageError(exc.format_message(), "see `deployctl COMMAND --help`"), traceback=False)
    except (KeyboardInterrupt, click.exceptions.Abort):
        # Unwound like any error: children stopped, the lock released, an open rollout recorded interrupted.
        sys.stderr.write("interrupted\n")
        return int(ExitCode.INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 (the last line of defence: every error gets a documented code)
        return _fail(session, _translated(exc))
    return int(code) if isinstance(code, int) else 0


def _stop_on_sigterm() -> Any:
    """SIGTERM (a CI runner cancelling the job, `kill`) stops deployctl the way Ctrl-C does, instead of
    killing it where it stands with the lock held and its children orphaned. Returns the handler it replaced."""
    if threading.current_thread() is not threading.main_thread():
        return None  # signal handlers can only be set from the main thread (tests call main() from others)

    def interrupt(signum: int, frame: object) -> None:
        del signum, frame
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, interrupt)


def _translated(exc: Exception) -> DeployctlError:
    """AWS and Kubernetes API errors the adapters did not translate themselves are still the user's to
    read as one line with a fix; anything else is a bug."""
    from deployctl import aws, kube

    if aws.is_aws_error(exc):
        return aws.translate(exc)
    if kube.is_kube_error(exc):
        return kube.translate(exc)
    return DeployctlError(f"internal error: {type(exc).__name__}: {exc}", "re-run with -vv and report the traceback")


def _fail(session: Session, error: DeployctlError, *, traceback: bool = True) -> int:
    if traceback and session.console.verbosity >= 2:
        import traceback as tb

        tb.print_exc(file=sys.stderr)
    session.console.error(error, session.command)
    return int(error.exit_code)
