"""Options every command shares: the global options (accepted before or after the command, as users type
them) and the timeouts (one name and one type per concept; defaults from the environment's configuration)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from deployctl.cli.session import Session

F = TypeVar("F", bound=Callable[..., Any])

OUTPUT = click.Choice(["text", "json"])


def _session(ctx: click.Context) -> Session | None:
    return ctx.find_object(Session)


def _set_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    session = _session(ctx)
    if session is not None and value is not None:
        session.config_option = value


def _set_output(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    session = _session(ctx)
    if session is not None and value is not None:
        session.console.output = value


def _set_verbose(ctx: click.Context, _param: click.Parameter, value: int) -> None:
    session = _session(ctx)
    if session is not None and value:
        session.console.verbosity += value  # `-v deploy dev -v` is -vv
        session.console.setup_logging()


def _set_no_color(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    session = _session(ctx)
    if session is not None and value:
        session.console.color = False


def global_options() -> list[click.Option]:
    """The root's options again, for every command: eager, so ``--config`` and ``-o json`` take effect before
    an argument such as ENV is checked against the configuration (and its error printed as JSON)."""
    common: dict[str, Any] = {"expose_value": False, "is_eager": True}
    return [
        click.Option(["--config"], metavar="PATH", callback=_set_config, help="Configuration file.", **common),
        click.Option(["--output", "-o"], type=OUTPUT, callback=_set_output, help="text or json.", **common),
        click.Option(["-v", "--verbose"], count=True, callback=_set_verbose, help="-v, -vv: more output.", **common),
        click.Option(["--no-color"], is_flag=True, callback=_set_no_color, help="No ANSI colours.", **common),
    ]


def add_global_options(command: click.Command) -> None:
    """Give ``command`` (and, for a group, each command under it) the global options."""
    names = {name for param in command.params for name in getattr(param, "opts", [])}
    command.params.extend(o for o in global_options() if not names & set(o.opts))
    if isinstance(command, click.Group):
        for subcommand in command.commands.values():
            add_global_options(subcommand)


LOCK_TIMEOUT = click.option(
    "--lock-timeout",
    type=click.IntRange(0, 3600),
    metavar="SECONDS",
    help="Wait this long for the environment lock (default: the environment's lock_timeout_seconds).",
)

ROLLOUT_TIMEOUT = click.option(
    "--rollout-timeout",
    type=click.IntRange(1, 24 * 3600),
    metavar="SECONDS",
    help="Give up on a rollout after this long; a broken pod fails it at once "
    "(default: the environment's rollout_timeout_seconds).",
)


def rollout_timeout_alias(function: F) -> F:
    """``deploy --timeout``, the old name of ``--rollout-timeout``, still accepted (hidden)."""
    return click.option("--timeout", "old_timeout", type=click.IntRange(1, 24 * 3600), hidden=True)(function)
