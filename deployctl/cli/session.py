"""Per-invocation state on ``ctx.obj`` and the option types every command shares."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from deployctl.console import Console, Result
from deployctl.core.errors import ConfigError, ExitCode, UsageError

if TYPE_CHECKING:
    from deployctl.app.context import Contexts, EnvContext
    from deployctl.config import LoadedConfig
    from deployctl.release.pipeline import RouteConfig
    from deployctl.runner import ProcessRunner

KEYS_HINT = "fix the keys above, then re-run (see README: Configuration)"


@dataclass
class Session:
    """Per-invocation state: options, the console, the config and the environment contexts (built on first use)."""

    config_option: str | None = None
    console: Console = field(default_factory=Console)
    command: str | None = None
    _config: LoadedConfig | None = None
    _runner: ProcessRunner | None = None
    _contexts: Contexts | None = None

    # pathlib, json and logging are imported where they are used: `--help` needs none of them.
    @property
    def config(self) -> LoadedConfig:
        if self._config is None:
            # Imported here: pydantic's model construction is most of deployctl's import time,
            # and --help / --version never need the configuration.
            from pathlib import Path

            from deployctl.config import ConfigProblemsError, find_config, load

            try:
                path = find_config(Path.cwd(), self.config_option)
                self._config = load(path)
                sandbox_state = os.environ.get("DEPLOYCTL_SANDBOX")
                if sandbox_state:  # `eval "$(deployctl sandbox env)"`: every environment points at the sandbox
                    from deployctl.sandbox.session import overrides_from_state

                    self._config = load(path, overrides_from_state(Path(sandbox_state), self._config.settings))
            except ConfigProblemsError as exc:
                raise ConfigError(exc.problems, exc.hint or KEYS_HINT) from None
        return self._config

    @property
    def routing(self) -> RouteConfig:
        """The keys ``ci steps`` routes by: read without pydantic when they are in their plain form, else (and
        in the sandbox, whose overrides only a full load applies) from the validated configuration."""
        if self._config is None and not os.environ.get("DEPLOYCTL_SANDBOX"):
            from pathlib import Path

            from deployctl.config.locate import ConfigProblemsError, find_config
            from deployctl.config.routing import read_routing

            try:
                found = read_routing(find_config(Path.cwd(), self.config_option))
            except ConfigProblemsError as exc:
                raise ConfigError(exc.problems, exc.hint or KEYS_HINT) from None
            if found is not None:
                return found
        return self.config.settings

    def plain_config(self) -> LoadedConfig:
        """The configuration without sandbox overrides: the sandbox commands manage the sandbox itself."""
        from pathlib import Path

        from deployctl.config import ConfigProblemsError, find_config, load

        try:
            return load(find_config(Path.cwd(), self.config_option))
        except ConfigProblemsError as exc:
            raise ConfigError(exc.problems, exc.hint or KEYS_HINT) from None

    @property
    def runner(self) -> ProcessRunner:
        if self._runner is None:
            from deployctl.runner import ProcessRunner  # subprocess + threading: not needed for --help

            self._runner = ProcessRunner(redactor=self.console.redactor, verbose=self.console.verbosity >= 1)
        return self._runner

    @property
    def contexts(self) -> Contexts:
        """One context per environment for this command (promote uses two)."""
        if self._contexts is None:
            from deployctl.app.context import Contexts

            self._contexts = Contexts(self.config, self.runner, self.console)
        return self._contexts

    def env(self, name: str) -> EnvContext:
        return self.contexts[name]

    def emit(self, result: Result, code: ExitCode = ExitCode.OK) -> int:
        self.console.result(result, ok=code in (ExitCode.OK, ExitCode.CHANGES))
        return int(code)


class EnvironmentType(click.ParamType[str]):
    """An environment name declared in the configuration; unknown names list the known ones."""

    name = "ENV"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        del param  # click's signature
        session = ctx.find_object(Session) if ctx else None
        if session is None:
            return str(value)
        known = list(session.config.settings.environments)
        if value not in known:
            raise UsageError(f"unknown environment {value!r}", f"known environments: {', '.join(known)}")
        return str(value)


ENV = EnvironmentType()


@dataclass(frozen=True)
class TerminalConfirm:
    """Shows what is about to change on stderr and asks for an answer to be typed back."""

    console: Console

    def __call__(self, lines: list[str], answer: str) -> bool:
        for line in lines:
            self.console.progress(line)
        typed = click.prompt(f"type {answer!r} to continue", default="", show_default=False, err=True)
        return str(typed).strip() == answer


def terminal_confirm(session: Session) -> TerminalConfirm | None:
    """A confirmation only when stdin is a terminal: nothing prompts in pipelines."""
    return TerminalConfirm(session.console) if sys.stdin.isatty() else None


def freeze_reason(override_freeze: bool, reason: str | None) -> str | None:
    """The reason an override of a change window is recorded with (None: no override); the flag needs one."""
    if not override_freeze:
        return None
    if not (reason or "").strip():
        raise UsageError("--override-freeze needs --reason TEXT", "the reason is recorded in the history and announced")
    return str(reason).strip()
