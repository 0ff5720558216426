"""Start-up (issue 20): `deployctl --help` imports no command module, `ci steps` no pydantic, and what the
lazy group shows without importing is exactly what click shows once every command is imported."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

import deployctl.cli
from deployctl.cli.lazy import LazyGroup
from deployctl.cli.main import cli, main
from deployctl.cli.root import COMMANDS

REPO = Path(__file__).resolve().parents[2]
COMMAND_MODULES = sorted({module for module, _ in COMMANDS.values()})


def _imported_after(args: list[str], cwd: Path = REPO) -> tuple[str, set[str]]:
    code = (
        "import sys\n"
        "from deployctl.cli.main import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "finally:\n"
        "    print('\\x00' + ' '.join(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "100", "PYTHONPATH": str(REPO)},
        check=True,
    )
    out, _, modules = result.stdout.rpartition("\x00")
    return out, set(modules.split())


def _import_every_command_module() -> None:
    for info in pkgutil.iter_modules(deployctl.cli.__path__):
        importlib.import_module(f"deployctl.cli.{info.name}")


def test_help_imports_no_command_module_and_no_pydantic() -> None:
    out, modules = _imported_after(["--help"])
    assert "Commands:" in out
    assert not modules & {*COMMAND_MODULES, "pydantic", "boto3", "kubernetes", "deployctl.config.settings"}


@pytest.mark.parametrize(
    "args",
    [
        ["ci", "steps", "--event", "push", "--ref", "refs/heads/main"],
        ["-o", "json", "ci", "steps", "--event", "push", "--ref", "refs/tags/release-1.4.0"],
    ],
)
def test_ci_steps_imports_no_pydantic_and_no_command_module(args: list[str]) -> None:
    out, modules = _imported_after(args)
    assert "promote" in out or "deploy-dev" in out
    assert not modules & {*COMMAND_MODULES, "pydantic", "boto3", "kubernetes", "subprocess"}


def test_a_command_imports_only_its_own_module() -> None:
    _, modules = _imported_after(["plan", "--help"])
    assert "deployctl.cli.terraform_commands" in modules
    assert not modules & {"deployctl.cli.release_commands", "deployctl.cli.sandbox_commands"}


def test_the_table_lists_every_command_where_it_is_defined() -> None:
    _import_every_command_module()
    registered = cli.lazy_commands._registered if isinstance(cli, LazyGroup) else {}
    root_own = {
        name for name, command in registered.items() if command.callback and "root" in command.callback.__module__
    }
    assert set(registered) == set(COMMANDS) | root_own, "a command module added or dropped a command: update COMMANDS"
    for name, (module, summary) in COMMANDS.items():
        command = cli.commands[name]
        defined = command.callback.__module__ if command.callback else ""
        assert defined == module, name
        assert " ".join((command.help or "").split("\n\n")[0].split()) == summary, name


def test_help_from_the_table_is_what_click_shows(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lazy, _ = _imported_after(["--help"])
    _import_every_command_module()
    monkeypatch.setenv("COLUMNS", "100")
    assert main(["--help"]) == 0
    assert capsys.readouterr().out == lazy
    context = click.Context(cli, info_name="deployctl")
    full, table = context.make_formatter(), context.make_formatter()
    click.Group.format_commands(cli, context, full)  # click's own listing, every command imported
    cli.format_commands(context, table)
    assert table.getvalue() == full.getvalue()


def test_unknown_command_suggests_without_importing_every_module() -> None:
    code = (
        "import sys\n"
        "from deployctl.cli.main import main\n"
        "rc = main(['promot'])\n"
        "print(rc, sorted(m for m in sys.modules if m.endswith('_commands')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout.strip() == "2 []"
    assert "promote" in result.stderr


@pytest.mark.parametrize("columns", ["40", "79", "100", "160", "", "x"])
def test_help_width_is_clicks_without_shutil(monkeypatch: pytest.MonkeyPatch, columns: str) -> None:
    import shutil

    from deployctl.cli.fast import help_width

    monkeypatch.setenv("COLUMNS", columns)
    assert help_width(100) == max(min(shutil.get_terminal_size().columns, 100) - 2, 50)
