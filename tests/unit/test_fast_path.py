"""The start-up fast path (issue 20): ``deployctl --help`` and ``deployctl ci steps`` answered without click print
exactly what the Click CLI prints (stdout, stderr, exit code), and anything else is left to the Click CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deployctl.cli import fast
from deployctl.cli.main import main

REPO = Path(__file__).resolve().parents[2]
PUSH_MAIN = ["ci", "steps", "--event", "push", "--ref", "refs/heads/main"]
TAG = ["--event", "push", "--ref", "refs/tags/release-1.4.0"]
TYPO = """[tool.deployctl]
main_branch = "main"
[tool.deployctl.environments.dev]
aws = { region = "us-east-1" }
terraform = { root = "terraform/env" }
promte_from = "prod"
"""

INVOCATIONS = [
    ["--help"],
    ["-h"],
    [],
    ["--help", "ci"],
    ["--version"],
    PUSH_MAIN,
    ["ci", "steps", "--event", "pull_request", "--ref", "refs/pull/7/merge"],
    ["ci", "steps", *TAG],
    ["ci", "steps", "--event", "workflow_dispatch", "--ref", "refs/heads/main"],
    ["ci", "steps", "--event", "push", "--ref", "refs/heads/shared-terraform"],
    ["ci", "steps", "--event", "push", "--ref", "refs/heads/feature/x"],
    ["-o", "json", "ci", "steps", *TAG],
    ["--output", "json", "ci", "steps", *TAG],
    ["--output=json", "ci", "--no-color", "steps", *TAG],
    ["ci", "steps", *TAG, "-o", "json"],
    ["ci", "steps", *TAG, "--output", "text"],
    ["ci", "-o", "json", "steps", "--ref=refs/heads/main", "--event=push"],
    ["-o", "json", "ci", "steps", *TAG, "-o", "text"],
    ["--no-color", "ci", "steps", "--ref", "refs/heads/main", "--event", "push"],
    ["--config", "pyproject.toml", "ci", "steps", *TAG],
    ["ci", "steps", *TAG, "--config=pyproject.toml", "-o", "json"],
    ["ci", "steps", "--event", "bogus", "--ref", "refs/heads/main"],
    ["-o", "json", "ci", "steps", "--event", "bogus", "--ref", "refs/heads/main"],
    ["ci", "steps", "--event", "push"],
    ["ci", "steps", "--event", "push", "--ref"],
    ["ci", "steps", "--event", "push", "--ref", "refs/heads/main", "extra"],
    ["ci", "steps", "--event", "push", "--ref", "refs/heads/main", "--verbose"],
    ["--event", "push", "ci", "steps", "--ref", "refs/heads/main"],
    ["ci", "steps", "--event", "push", "--ref", "refs/tags/release-nope"],
    ["ci", "steps", *TAG, "-o", "yaml"],
    ["ci", "steps", *TAG, "-ojson"],
    ["ci", "steps", *TAG, "--config", "missing.toml"],
    ["-o", "json", "ci", "steps", *TAG, "--config", "missing.toml"],
    ["ci", "steps", *TAG, "--config", "typo.toml"],
    ["-o", "json", "ci", "steps", *TAG, "--config", "invalid.toml"],
    ["ci", "steps", *TAG, "--", "x"],
    ["ci", "step", *TAG],
]


def _run(args: list[str], cwd: Path, *, fast_path: bool, **env: str) -> tuple[int, str, str]:
    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO), "COLUMNS": "100", **env}
    if not fast_path:
        environ["DEPLOYCTL_NO_FAST_PATH"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "deployctl", *args], capture_output=True, text=True, cwd=cwd, env=environ, check=False
    )
    return result.returncode, result.stdout, result.stderr


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("fast")
    (work / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text(encoding="utf-8"), encoding="utf-8")
    (work / "typo.toml").write_text(TYPO, encoding="utf-8")  # a key routing does not read: both route
    (work / "invalid.toml").write_text(TYPO.replace('"main"', "3"), encoding="utf-8")  # the full load reports it
    return work


@pytest.mark.parametrize("args", INVOCATIONS, ids=lambda args: " ".join(args) or "(none)")
def test_fast_path_prints_what_click_prints(workdir: Path, args: list[str]) -> None:
    fast_result = _run(args, workdir, fast_path=True)
    assert fast_result == _run(args, workdir, fast_path=False)


@pytest.mark.parametrize(
    ("env", "args"),
    [
        ({"DEPLOYCTL_CONFIG": "typo.toml"}, PUSH_MAIN),
        ({"DEPLOYCTL_CONFIG": "missing.toml"}, PUSH_MAIN),
        ({"DEPLOYCTL_SANDBOX": "no-such-state.json"}, PUSH_MAIN),
        ({"COLUMNS": "60"}, ["--help"]),
        ({"COLUMNS": "x"}, ["-h"]),
    ],
)
def test_same_under_the_environment(workdir: Path, env: dict[str, str], args: list[str]) -> None:
    assert _run(args, workdir, fast_path=True, **env) == _run(args, workdir, fast_path=False, **env)


def test_no_configuration_found_is_clicks_error(tmp_path: Path) -> None:
    result = _run(PUSH_MAIN, tmp_path, fast_path=True)
    assert result == _run(PUSH_MAIN, tmp_path, fast_path=False)
    assert result[0] == 2


@pytest.mark.parametrize(("args", "answered"), [(["--help"], True), (PUSH_MAIN, True), (["--version"], False)])
def test_the_fast_path_imports_no_click(workdir: Path, args: list[str], answered: bool) -> None:
    code = (
        "import sys\n"
        "from deployctl.cli.fast import run\n"
        f"code = run({args!r})\n"
        "print('\\x00', code, sorted(m for m in sys.modules if m.split('.')[0] in "
        "('click', 'pydantic', 'boto3', 'kubernetes', 'subprocess')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=workdir,
        check=True,
        env={"PYTHONPATH": str(REPO)},
    )
    assert result.stdout.rpartition("\x00")[2].split() == ["0" if answered else "None", "[]"]


@pytest.mark.parametrize("columns", [*range(30, 131), 200, 0, -1])
def test_help_is_clicks_at_every_width(
    columns: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    assert main(["--help"]) == 0
    assert fast.help_text(fast.help_width(fast.MAX_WIDTH)) == capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [
        ["ci", "steps", "--event", "push"],
        ["ci", "--event", "push", "steps", "--ref", "r"],
        ["steps", "ci", "--event", "push", "--ref", "r"],
        ["ci", "steps", "--event", "push", "--ref", "-v"],
        ["ci", "steps", "--event=", "--ref", "r"],
        ["ci", "steps", "--event", "push", "--ref", "r", "--no-color=1"],
        ["ci", "steps", "--event", "push", "--ref", "r", "-o=json"],
        ["ci", "steps", "--event", "push", "--ref", "r", "--output", "JSON"],
        ["ci", "steps", "--event", "push", "--ref", "r", "--help"],
    ],
)
def test_forms_left_to_click(args: list[str]) -> None:
    assert fast.parse_ci_steps(args) is None


def test_last_value_counts() -> None:
    args = ["-o", "json", "--config", "a", "ci", "steps", "--event", "push", "--ref", "r", "--config=b", "-o", "text"]
    assert fast.parse_ci_steps(args) == ("push", "r", "b", "text")
