"""Errors that reach the user: one message, one hint, one documented exit code.

Every expected failure is a ``DeployctlError``; ``cli`` renders it as one line
(plus the hint) and exits with its code. Anything else is a bug and shows a
traceback only at ``-vv``.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The documented exit codes (README: "Exit codes")."""

    OK = 0
    FAILED = 1
    USAGE = 2
    CHANGES = 3
    REFUSED = 4
    LOCKED = 5
    INTERRUPTED = 130


class DeployctlError(Exception):
    """An expected failure with a message for humans and a next step."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, hint: str | None = None, *, details: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details or {}


class UsageError(DeployctlError):
    """Invalid input: configuration, environment name, tag, missing file."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """The configuration file is invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: list[str], hint: str | None = None) -> None:
        self.problems = problems
        if len(problems) == 1:
            summary = problems[0]
        else:
            summary = f"{len(problems)} problems in the configuration:\n  " + "\n  ".join(problems)
        super().__init__(summary, hint)


class PolicyError(DeployctlError):
    """Refused by policy: promotion gate, immutable tag conflict, downgrade, stale plan."""

    exit_code = ExitCode.REFUSED


class LockedError(DeployctlError):
    """The environment (or its terraform state) is locked by another run."""

    exit_code = ExitCode.LOCKED


class OperationError(DeployctlError):
    """An operation was attempted and failed (exit 1)."""


class CommandFailedError(OperationError):
    """An external command exited with a code its caller did not accept."""

    def __init__(
        self, argv: list[str], exit_code: int, stderr_tail: str, hint: str | None = None, *, reason: str | None = None
    ) -> None:
        self.argv = argv
        self.returncode = exit_code
        self.stderr_tail = stderr_tail
        tool = argv[0].rsplit("/", 1)[-1] if argv else "command"
        message = f"{tool} {reason or f'failed (exit {exit_code})'}: {' '.join(argv)}"
        if stderr_tail:
            message += "\n" + stderr_tail
        super().__init__(message, hint)


class ToolNotFoundError(OperationError):
    """A required external tool is not installed."""

    exit_code = ExitCode.USAGE


class InvalidValueError(ValueError):
    """A value that does not have the required form (the message says which form). Defined here, not in ``model``,
    so that ``ci steps`` can raise it without importing the model's dataclasses."""
