"""The first hour of a new user (issue 17): global options wherever they are typed, hints that lead somewhere,
the tools `make setup` installed found, one name and type per timeout, and the sandbox commands from any
directory (without a running sandbox: the lab tests run a real one, tests/lab/test_first_hour.py)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from deployctl.cli.main import installed_tools_dir
from deployctl.cli.sandbox_commands import BEHAVIOURS
from deployctl.promotion.request import PromoteRequest
from deployctl.sandbox import where
from deployctl.sandbox.control_plane import BEHAVIOURS as LAB_BEHAVIOURS
from deployctl.sandbox.tool_builds import bin_dir
from tests.cli.conftest import REPO, Invoke

SCHEMA = "deployctl/v1"


# --------------------------------------------------------------------------- global options after the command


@pytest.mark.parametrize(
    "args",
    [
        ("doctor", "--no-config", "--output", "json"),
        ("config", "show", "prod", "-o", "json"),
        ("ci", "steps", "--event", "push", "--ref", "refs/heads/main", "-o", "json"),
        ("-o", "json", "config", "show", "prod"),
        ("config", "-o", "json", "show", "prod"),
    ],
)
def test_output_json_wherever_it_is_typed(invoke: Invoke, args: tuple[str, ...]) -> None:
    result = invoke(*args)
    assert result.code in (0, 1, 2), result.err  # doctor: 2 when this machine lacks a tool
    assert result.json()["schema"] == SCHEMA


def test_config_after_the_command_applies_before_env_is_checked(invoke: Invoke, project: Path) -> None:
    other = project / "elsewhere" / "team.toml"
    other.parent.mkdir()
    text = (project / "pyproject.toml").read_text().replace("environments.prod]", "environments.production]")
    text = text.replace("verify.environments.prod.", "verify.environments.production.")  # its checks there
    other.write_text(text)
    (project / "pyproject.toml").write_text("[project]\nname = 'no-deployctl-here'\n")
    result = invoke("config", "show", "production", "--config", str(other), "-o", "json")
    assert result.code == 0, result.err
    assert result.json()["environments"]["production"]["namespace"] == "api"


def test_a_usage_error_after_the_command_is_json_when_asked_after_it(invoke: Invoke) -> None:
    result = invoke("config", "show", "nope", "-o", "json")
    assert result.code == 2
    document = result.json()
    assert document["ok"] is False
    assert document["error"]["message"] == "unknown environment 'nope'"


def test_verbose_and_no_color_after_the_command(invoke: Invoke) -> None:
    assert invoke("config", "show", "prod", "-vv", "--no-color").code == 0
    assert logging.getLogger("deployctl").level == logging.DEBUG
    assert invoke("-v", "config", "show", "prod", "-v").code == 0, "-v before and after add up"
    assert logging.getLogger("deployctl").level == logging.DEBUG
    assert invoke("config", "show", "prod").code == 0
    assert logging.getLogger("deployctl").level == logging.WARNING


def test_every_command_takes_the_global_options() -> None:
    from deployctl.cli.main import cli

    def commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
        found = []
        for name, command in group.commands.items():
            found.append(((*path, name), command))
            if hasattr(command, "commands"):
                found += commands(command, (*path, name))
        return found

    listed = commands(cli)
    assert len(listed) > 20
    for path, command in listed:
        names = {opt for param in command.params for opt in getattr(param, "opts", [])}
        assert {"--output", "-o", "-v", "--no-color", "--config"} <= names, path


def test_a_usage_error_names_the_commands_help(invoke: Invoke) -> None:
    result = invoke("history", "prod", "--bogus")
    assert result.code == 2
    assert "No such option: --bogus" in result.err or "No such option '--bogus'" in result.err
    assert "hint: see `deployctl history --help`" in result.err
    assert "COMMAND" not in result.err
    nested = invoke("lock", "status")
    assert "hint: see `deployctl lock status --help`" in nested.err


# --------------------------------------------------------------------------- tools, hints


def test_installed_tools_dir_is_where_make_setup_links_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert installed_tools_dir() == bin_dir()


def test_doctor_finds_the_tools_make_setup_installed(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """After `make demo`, helm is in the tools cache and not on PATH: doctor (and every command) finds it."""
    cache = tmp_path / "cache"
    tools = cache / "deployctl" / "tools" / "bin"
    tools.mkdir(parents=True)
    helm = tools / "helm"
    helm.write_text("#!/bin/sh\necho v4.0.1\n")
    helm.chmod(0o755)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    document = invoke("doctor", "--no-config", "-o", "json").json()
    tools_found = {t["name"]: t for t in document["tools"]}
    assert tools_found["helm"]["found"] is True and tools_found["helm"]["version"] == "4.0.1"
    assert tools_found["terraform"]["found"] is False
    assert os.environ["PATH"] == str(tmp_path / "empty"), "the process's PATH is restored after the command"


def test_command_name_is_runnable_when_pasted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # deployctl not on PATH (make setup installs it in .venv/bin)
    name = where.command_name()
    assert name != "deployctl"
    first = name.split()[0]
    done = subprocess.run([first, *name.split()[1:], "--version"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.startswith("deployctl "), done
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin")
    assert where.command_name() == "deployctl"


# --------------------------------------------------------------------------- timeouts


def _help(invoke: Invoke, *command: str) -> str:
    result = invoke(*command, "--help")
    assert result.code == 0
    return result.out


def test_one_name_and_type_per_timeout(invoke: Invoke) -> None:
    for command in (("deploy",), ("promote",)):
        text = _help(invoke, *command)
        assert "--rollout-timeout SECONDS" in text and "--lock-timeout SECONDS" in text, command
        assert "rollout_timeout_seconds" in text and "lock_timeout_seconds" in text
    for command in (("apply",), ("destroy",)):
        assert "--lock-timeout SECONDS" in _help(invoke, *command)
    assert "--timeout" not in _help(invoke, "deploy").replace("-timeout SECONDS", ""), "the old name is hidden"
    for args in (("deploy", "dev", "--rollout-timeout", "1.5"), ("promote", "release-1.0.0", "--lock-timeout", "0.5")):
        assert "is not a valid integer" in invoke(*args).err, "whole seconds, everywhere"


def _captured_deploy(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    class Done:
        command = "deploy"

        def data(self) -> dict[str, Any]:
            return {}

        def text(self) -> list[str]:
            return []

    def fake(ctx: Any, **kwargs: Any) -> Done:
        seen.update(kwargs, env=ctx.name)
        return Done()

    monkeypatch.setattr("deployctl.app.deploy.deploy", fake)
    return seen


def test_deploy_rollout_timeout_from_flag_old_flag_and_config(
    invoke: Invoke, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _captured_deploy(monkeypatch)
    assert invoke("deploy", "dev", "--rollout-timeout", "90", "--lock-timeout", "7").code == 0
    assert (seen["rollout_timeout"], seen["lock_timeout"]) == (90.0, 7)
    assert invoke("deploy", "dev", "--timeout", "45").code == 0, "the old name still works"
    assert seen["rollout_timeout"] == 45.0
    assert invoke("deploy", "dev").code == 0
    assert (seen["rollout_timeout"], seen["lock_timeout"]) == (600.0, None), "the default: rollout_timeout_seconds"
    config = project / "pyproject.toml"
    config.write_text(
        config.read_text().replace(
            'values = "values-dev.yaml"', 'values = "values-dev.yaml"\nrollout_timeout_seconds = 120'
        )
    )
    assert invoke("deploy", "dev").code == 0
    assert seen["rollout_timeout"] == 120.0


def test_promote_timeouts_reach_the_request(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[PromoteRequest] = []

    def fake(_contexts: Any, request: PromoteRequest, **_: Any) -> Any:
        seen.append(request)
        raise SystemExit(0)

    monkeypatch.setattr("deployctl.app.promote.promote", fake)
    with pytest.raises(SystemExit):
        invoke("promote", "release-1.0.0", "--rollout-timeout", "30", "--lock-timeout", "5")
    assert (seen[0].rollout_timeout, seen[0].lock_timeout) == (30, 5)
    with pytest.raises(SystemExit):
        invoke("promote", "release-1.0.0")
    from deployctl.config import load

    prod = load(REPO / "pyproject.toml").settings.environments["prod"]
    assert seen[1].rollout_timeout is None and seen[1].rollout_seconds(prod) == 600.0


# --------------------------------------------------------------------------- sandbox without a running sandbox


def test_sandbox_mark_offers_exactly_the_labs_behaviours(invoke: Invoke) -> None:
    assert set(BEHAVIOURS) == set(LAB_BEHAVIOURS)
    text = _help(invoke, "sandbox", "mark")
    assert "[crashloop|oom|pull-error|not-ready|fail|http-500|http-503]" in text.replace("\n", "").replace(" ", "")


def test_sandbox_env_without_a_sandbox_refuses_and_makes_the_next_commands_refuse(
    invoke: Invoke, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`eval "$(deployctl sandbox env)"` with no sandbox used to set nothing, and the next commands went to AWS."""
    result = invoke("sandbox", "env")
    assert result.code == 2
    assert result.err.startswith("error: the sandbox is not running (no state at ")
    state = project / ".deployctl" / "sandbox" / "state.json"
    assert result.out.splitlines() == [f"export DEPLOYCTL_SANDBOX={state}"]
    monkeypatch.setenv("DEPLOYCTL_SANDBOX", str(state))  # what the eval did
    after = invoke("doctor", "-o", "json")
    assert after.code == 2
    assert "names " + str(state) + ", which does not exist (the sandbox is down)" in after.err
    assert "environments" not in after.out, "no endpoint was probed"


def test_sandbox_commands_work_where_there_is_no_configuration(
    invoke: Invoke, project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("not-a-repo"))  # no pyproject.toml here or above
    status = invoke("sandbox", "status", "-o", "json")
    assert status.code == 1
    assert status.json()["running"] is False
    assert status.json()["state_file"] == str(where.pointer_path())
    assert "no pyproject.toml" not in status.err
    assert invoke("sandbox", "mark", "sha256:abc", "oom").code == 2
    assert invoke("sandbox", "down").code == 0
    missing = invoke("sandbox", "status", "--sandbox", str(project))
    assert missing.code == 2 and f"--sandbox {project}: no sandbox state there" in missing.err


# --------------------------------------------------------------------------- configuration errors


def test_a_toml_syntax_error_is_reported_where_it_is(invoke: Invoke, project: Path) -> None:
    config = project / "pyproject.toml"
    lines = config.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith('release = "api"'))
    lines[at] = 'release = "api'  # the closing quote forgotten
    config.write_text("\n".join(lines) + "\n")
    result = invoke("config", "show")
    assert result.code == 2
    assert result.err.startswith(f"error: {config}:{at + 1}:15: invalid TOML: "), result.err
    assert "hint: fix the syntax there (pyproject.toml)" in result.err
    assert "no pyproject.toml with a [tool.deployctl] table" not in result.err


def test_a_missing_config_file_is_named_with_a_hint_that_fits(invoke: Invoke, project: Path) -> None:
    result = invoke("config", "show", "--config", "nope.toml")
    assert result.code == 2
    assert f"error: {project / 'nope.toml'}: configuration file not found (from --config)" in result.err
    assert "fix the keys above" not in result.err
    assert "hint: pass --config the path of a pyproject.toml with [tool.deployctl]" in result.err
