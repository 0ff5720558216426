"""Every example works as written (issue 17): each `Example:` line of every command's --help and each
`deployctl ...` line of the README's code blocks. Those that need no cluster or cloud run, and exit 0 or their
documented code; the others are parsed exactly as click parses them (no "No such option", no bad value)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest

from deployctl.cli.main import cli
from deployctl.cli.session import Session
from tests.cli.conftest import REPO, Invoke

SHA = "0123456789abcdef0123456789abcdef01234567"
# Commands that need no cluster, AWS or registry: run, with the exit codes their help or the README documents.
RUNNABLE: dict[tuple[str, ...], set[int]] = {
    ("config", "show"): {0},
    ("ci", "steps"): {0},
    ("doctor",): {1, 2},  # the endpoints are on a closed port: 1; 2 when this machine also lacks a tool
    ("sandbox", "status"): {1},  # no sandbox runs here: exit 1
    ("sandbox", "env"): {2},  # none runs: exit 2 (and DEPLOYCTL_SANDBOX named, so what follows refuses)
    ("sandbox", "mark"): {2},
    ("sandbox", "image"): {2},  # none runs (and the project is no git repository): exit 2
    ("sandbox", "restart"): {2},  # none runs: exit 2
    ("sandbox", "down"): {0},  # "was not running"
}


def _walk(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in group.commands.items():
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _walk(command, (*path, name))


def help_examples() -> list[tuple[str, str]]:
    """(where, line) for every line after `Example:` in a command's help."""
    found = [("deployctl --help", line) for line in _example_lines(cli.help or "")]
    for path, command in _walk(cli):
        found += [(f"deployctl {' '.join(path)} --help", line) for line in _example_lines(command.help or "")]
    return found


def _example_lines(text: str) -> list[str]:
    if "Example:" not in text:
        return []
    after = text.split("Example:", 1)[1]
    return [line.strip() for line in after.splitlines() if line.strip()]


def readme_examples() -> list[tuple[str, str]]:
    """(where, line) for every line of a README code block (other than ```text blocks) that runs deployctl."""
    found, language, number = [], None, 0
    for number, line in enumerate((REPO / "README.md").read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            language = None if language is not None else (line[3:].strip() or "plain")
            continue
        if language is not None and language != "text" and "deployctl" in line:
            found.append((f"README.md:{number}", line.split("  #", 1)[0].strip()))
    return found


def commands_of(line: str) -> list[list[str]]:
    """The deployctl invocations of an example line (``a && b``, ``eval "$(deployctl ...)"``, ``... >> FILE``)."""
    line = line.replace("$(git rev-parse HEAD)", SHA)
    invocations = []
    for part in (p.strip() for p in line.split("&&")):
        inner = re.fullmatch(r'eval "\$\((.*)\)"', part)
        argv = shlex.split(inner.group(1) if inner else part)
        for at, word in enumerate(argv):  # the shell's redirections and pipes are not deployctl's arguments
            if word in (">", ">>", "|", "2>", "<"):
                argv = argv[:at]
                break
        assert argv and argv[0] == "deployctl", f"an example that is not a deployctl command: {line!r}"
        invocations.append(argv[1:])
    return invocations


ALL = help_examples() + readme_examples()


def test_the_examples_are_collected() -> None:
    where = {w.split(":")[0] for w, _ in ALL}
    assert "README.md" in where
    assert sum(1 for w, _ in ALL if w.startswith("deployctl ")) >= 20, "every command has an example"
    lines = [line for _, line in ALL]
    assert "deployctl status prod --output json" in lines
    assert 'eval "$(deployctl sandbox env)"' in lines
    assert any(line.startswith("deployctl sandbox mark ") for line in lines)


def _command_path(argv: list[str]) -> tuple[str, ...]:
    words = [a for a in argv if not a.startswith("-")]
    for size in (2, 1):
        if tuple(words[:size]) in RUNNABLE:
            return tuple(words[:size])
    return ()


def _parse(argv: list[str]) -> click.Command:
    """Parse ``argv`` as ``deployctl argv`` would, down to the command, without running it."""
    ctx = cli.make_context("deployctl", list(argv), obj=Session())
    command: click.Command = cli
    while isinstance(command, click.Group):
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]  # click 8.2+: the subcommand and its arguments
        name, sub, args = command.resolve_command(ctx, rest)
        assert sub is not None and name is not None
        ctx = sub.make_context(name, args, parent=ctx)
        command = sub
    return command


@pytest.fixture
def quiet_project(project: Path) -> Path:
    """The reference configuration with its AWS endpoints on a closed local port (doctor probes them); no sandbox
    this user started is seen (tests/conftest.py: a private XDG_STATE_HOME)."""
    config = project / "pyproject.toml"
    text = re.sub(r"(aws = \{[^}]*?) \}", r'\1, endpoint_url = "http://127.0.0.1:9" }', config.read_text())
    config.write_text(text)
    return project


@pytest.mark.parametrize(("where", "line"), ALL, ids=[f"{w.split(':')[0]}: {line}" for w, line in ALL])
def test_example_works_as_written(where: str, line: str, quiet_project: Path, invoke: Invoke) -> None:
    del quiet_project
    for argv in commands_of(line):
        path = _command_path(argv)
        if path:
            result = invoke(*argv)
            assert result.code in RUNNABLE[path], f"{where}: {line}\n{result.err}"
            assert "Traceback" not in result.err
            if "-o" in argv or "--output" in argv:
                document: Any = result.json()
                assert document["schema"] == "deployctl/v1"
        else:
            try:
                _parse(argv)
            except click.ClickException as exc:
                pytest.fail(f"{where}: {line}: {exc.format_message()}")
