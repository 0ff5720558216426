"""The command line: parse, load config, call one use case, render, exit.

The only package that imports click. Heavy libraries (boto3, kubernetes, pydantic) are imported
inside the functions that need them, and a command's module only when the command is used
(``lazy``), so ``--help`` stays fast. Commands live in ``root`` (global options, config, doctor,
ci), ``terraform_commands``, ``release_commands`` and ``sandbox_commands``; ``main`` turns every
outcome into a documented exit code.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

import click

from deployctl.adapters import aws_errors
from deployctl.cli.root import cli
from deployctl.cli.session import Session
from deployctl.console import Console
from deployctl.core.errors import DeployctlError, ExitCode, UsageError
from deployctl.redact import Redactor

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["cli", "main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the CLI and turns every outcome into a documented exit code."""
    session = Session(console=Console(redactor=Redactor()))
    previous = _stop_on_sigterm()
    path = os.environ.get("PATH")
    os.environ["PATH"] = _with_installed_tools(path)
    try:
        return _run(session, argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if path is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = path


def installed_tools_dir() -> Path:
    """Where `make setup` links the tools it installed (``deployctl.sandbox.tools.bin_dir``; not imported here:
    the installer's imports would slow down every start)."""
    from pathlib import Path

    return Path(_installed_tools_dir())


def _installed_tools_dir() -> str:
    # os.path, not pathlib (the noqa's reason): every start computes this, and pathlib's imports are a few
    # percent of `deployctl --help`
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")  # noqa: PTH111, PTH118
    return os.path.join(base, "deployctl", "tools", "bin")  # noqa: PTH118


def _with_installed_tools(path: str | None) -> str:
    """``PATH`` with the tools deployctl installed last: after `make setup`, helm, terraform and kubectl are found
    even when that directory is not on the user's PATH, and a tool the user installed still wins."""
    tools = _installed_tools_dir()
    entries = [p for p in (path or "").split(os.pathsep) if p]
    if tools in entries or not os.path.isdir(tools):  # noqa: PTH112 (no pathlib at start-up)
        return path or ""
    return os.pathsep.join([*entries, tools])


def _run(session: Session, argv: list[str] | None) -> int:
    try:
        code = cli.main(args=argv, prog_name="deployctl", standalone_mode=False, obj=session)
    except DeployctlError as exc:
        return _fail(session, exc)
    except click.exceptions.Exit as exc:  # --help, --version
        return int(exc.exit_code)
    except click.ClickException as exc:  # usage errors found by click itself
        context = getattr(exc, "ctx", None)
        command = context.command_path if isinstance(context, click.Context) else "deployctl"
        return _fail(session, UsageError(exc.format_message(), f"see `{command} --help`"), traceback=False)
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
    from deployctl.adapters.kube import client as kube

    if aws_errors.is_aws_error(exc):
        return aws_errors.translate(exc)
    if kube.is_kube_error(exc):
        return kube.translate(exc)
    return DeployctlError(f"internal error: {type(exc).__name__}: {exc}", "re-run with -vv and report the traceback")


def _fail(session: Session, error: DeployctlError, *, traceback: bool = True) -> int:
    if traceback and session.console.verbosity >= 2:
        import traceback as tb

        tb.print_exc(file=sys.stderr)
    session.console.error(error, session.command)
    return int(error.exit_code)
