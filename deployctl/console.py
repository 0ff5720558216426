"""Human text vs ``--output json``: results to stdout, progress and diagnostics to stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol, TextIO

from deployctl.core.errors import DeployctlError
from deployctl.redact import RedactingFilter, Redactor

SCHEMA = "deployctl/v1"


class Result(Protocol):
    """What a use case returns: a command name, JSON data and human lines."""

    @property
    def command(self) -> str: ...

    def data(self) -> Mapping[str, Any]: ...

    def text(self) -> Sequence[str]: ...


# Shows ``lines`` (what is about to happen) and asks for ``answer`` to be typed back; True when it was.
# Use cases get None when stdin is not a terminal: nothing may prompt then.
Confirm = Callable[[list[str], str], bool]


class Reporter(Protocol):
    """Progress for humans on stderr (the console implements it; use cases and adapters only see this)."""

    def progress(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...

    def phase(self, name: str) -> AbstractContextManager[None]: ...


class Console:
    # A plain class, not a dataclass: `ci steps` prints through it on every pipeline run, and importing dataclasses
    # (inspect, ast) would be a third of its start-up.
    def __init__(
        self,
        output: str = "text",
        verbosity: int = 0,
        color: bool = True,
        redactor: Redactor | None = None,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.output = output
        self.verbosity = verbosity
        self.color = color
        self.redactor = redactor if redactor is not None else Redactor()
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr

    @property
    def json(self) -> bool:
        return self.output == "json"

    def setup_logging(self) -> None:
        import logging  # here: `deployctl --help` never logs

        level = {0: logging.WARNING, 1: logging.INFO}.get(self.verbosity, logging.DEBUG)
        handler = logging.StreamHandler(self.err)
        handler.addFilter(RedactingFilter(self.redactor))
        handler.setFormatter(logging.Formatter("%(message)s" if self.verbosity < 2 else "%(name)s: %(message)s"))
        root = logging.getLogger("deployctl")
        root.handlers[:] = [handler]
        root.setLevel(level)
        root.propagate = False

    def result(self, result: Result, *, ok: bool = True) -> None:
        if self.json:
            import json

            document = {"schema": SCHEMA, "command": result.command, "ok": ok, **result.data()}
            self.out.write(self.redactor(json.dumps(document, indent=2, default=str, sort_keys=False)) + "\n")
        else:
            for line in result.text():
                self.out.write(self.redactor(line) + "\n")
        self.out.flush()

    def error(self, error: DeployctlError, command: str | None) -> None:
        message = self.redactor(error.message)
        hint = self.redactor(error.hint) if error.hint else None
        self.err.write(self._paint(f"error: {message}", "31") + "\n")
        if hint:
            self.err.write(f"hint: {hint}\n")
        if self.json:
            import json

            document = {
                "schema": SCHEMA,
                "command": command,
                "ok": False,
                "error": {"message": message, "hint": hint, "exit_code": int(error.exit_code), **error.details},
            }
            self.out.write(self.redactor(json.dumps(document, indent=2, default=str)) + "\n")
            self.out.flush()

    def progress(self, message: str) -> None:
        """One line of progress on stderr (never on stdout: stdout is for results)."""
        self.err.write(self.redactor(message) + "\n")
        self.err.flush()

    def warn(self, message: str) -> None:
        self.err.write(self._paint(f"warning: {self.redactor(message)}", "33") + "\n")
        self.err.flush()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """``name ...`` then ``name done (1.2s)`` on stderr around a step, or ``name failed (1.2s)`` when the
        step raised (the error itself follows), ``name interrupted`` on Ctrl-C."""
        started = time.monotonic()
        self.progress(f"{name} ...")
        outcome = "failed"
        try:
            yield
            outcome = "done"
        except KeyboardInterrupt:
            outcome = "interrupted"
            raise
        finally:
            self.progress(f"{name} {outcome} ({time.monotonic() - started:.1f}s)")

    def _paint(self, text: str, code: str) -> str:
        if self.color and getattr(self.err, "isatty", lambda: False)():
            return f"\033[{code}m{text}\033[0m"
        return text
