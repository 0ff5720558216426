"""A click group whose commands' modules are imported on first use.

``deployctl --help`` lists every command with its one-line help from a static table (name -> module, summary)
and imports none of the command modules; ``deployctl plan dev`` imports the one module that defines ``plan``.
A module registers its commands on the group itself (``@cli.command``), as it would without the table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, MutableMapping
from importlib import import_module
from typing import Any

import click

from deployctl.cli.fast import help_width


class LazyCommands(MutableMapping[str, click.Command]):
    """A group's commands: those registered so far, plus the table's, whose module is imported when one of
    them is looked up. Iterating yields names without importing; each command found is given to ``prepare``
    once (the global options)."""

    def __init__(self, table: Mapping[str, tuple[str, str]], prepare: Callable[[click.Command], None]) -> None:
        self._table = table
        self._prepare = prepare
        self._registered: dict[str, click.Command] = {}
        self._prepared: set[str] = set()

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._registered and name in self._table:
            import_module(self._table[name][0])  # registers its commands on the group (KeyError below if not)
        command = self._registered[name]
        if name not in self._prepared:
            self._prepare(command)
            self._prepared.add(name)
        return command

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._registered[name] = command
        self._prepared.discard(name)

    def __delitem__(self, name: str) -> None:
        del self._registered[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted({*self._registered, *self._table}))

    def __len__(self) -> int:
        return len({*self._registered, *self._table})

    def __contains__(self, name: object) -> bool:
        return name in self._registered or name in self._table

    def stand_in(self, name: str) -> click.Command | None:
        """For a command not imported yet, a command with the table's help (None once it is imported)."""
        return None if name in self._registered else click.Command(name, help=self._table[name][1])


class LazyGroup(click.Group):
    """A group over ``LazyCommands``: ``lazy`` is the table of commands defined in other modules, ``prepare``
    is applied to each command when it is first looked up."""

    def __init__(
        self,
        *args: Any,
        lazy: Mapping[str, tuple[str, str]],
        prepare: Callable[[click.Command], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = LazyCommands(lazy, prepare)
        self.commands = self.lazy_commands

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        if parent is None and "terminal_width" not in extra:
            extra["terminal_width"] = help_width(self.context_settings.get("max_content_width", 80))
        return super().make_context(info_name, args, parent, **extra)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing (``Group.format_commands``), with a command not yet imported shown from the table."""
        rows: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            command = self.lazy_commands.stand_in(name) or self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in rows])
