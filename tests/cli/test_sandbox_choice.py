"""Which sandbox a command acts on (issue 24): the commands that change or stop one (`down`, `restart`, `mark`,
`image`) act only on the repository's own, `$DEPLOYCTL_SANDBOX`'s or `--sandbox DIR`'s, never on the one this
user started last (maybe another repository's); those that only read it (`status`, `env`) still find that one,
and say so. And `sandbox image`'s refusals. Without a running lab: the sandbox "started elsewhere" is a state file
with no services (the lab tests run real ones: tests/lab/test_first_hour.py, tests/lab/test_foreign_sandbox.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deployctl.sandbox import where
from tests.cli.conftest import Invoke
from tests.gitrepo import git


@pytest.fixture
def elsewhere(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The state file of a sandbox another repository started last (the per-user pointer names it)."""
    directory = tmp_path_factory.mktemp("other-repo") / ".deployctl" / "sandbox"
    directory.mkdir(parents=True)
    state = directory / "state.json"
    state.write_text(json.dumps({"version": 1, "state_dir": str(directory), "components": [], "services": {}}))
    where.pointer_path().parent.mkdir(parents=True, exist_ok=True)
    where.pointer_path().write_text(f"{state}\n")
    return state


@pytest.mark.parametrize(
    "command",
    [("down",), ("restart", "kwok"), ("mark", "sha256:3cead38ca1f2", "oom"), ("image", "api")],
    ids=lambda c: c[0],
)
def test_a_command_that_changes_a_sandbox_never_acts_on_the_one_started_last(
    invoke: Invoke, project: Path, elsewhere: Path, command: tuple[str, ...]
) -> None:
    _git_repository(project)  # `sandbox image` needs a commit
    result = invoke("sandbox", *command)
    assert result.code == 2, result.err
    assert (
        f"error: this repository has no sandbox running; the one you started last is in {elsewhere.parent}, and a "
        "sandbox that could be another repository's is never changed or stopped on a guess"
    ) in result.err
    assert f"hint: to act on that one, pass --sandbox {elsewhere.parent}" in result.err
    assert "Traceback" not in result.err
    assert elsewhere.is_file(), "nothing of it was touched"
    assert where.pointer_path().read_text().strip() == str(elsewhere)


def test_from_a_directory_with_no_configuration_too(
    invoke: Invoke, elsewhere: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("not-a-repo"))
    result = invoke("sandbox", "down")
    assert result.code == 2
    assert result.err.startswith(f"error: no sandbox is chosen here; the one you started last is in {elsewhere.parent}")
    assert elsewhere.is_file()


def test_status_and_env_still_find_the_one_started_last_and_say_so(invoke: Invoke, elsewhere: Path) -> None:
    status = invoke("sandbox", "status", "-o", "json")
    assert status.code == 0, status.err
    assert status.json()["state_file"] == str(elsewhere)
    said = f"sandbox: using the one you started last, in {elsewhere.parent} (none runs for here)"
    assert said in status.err
    env = invoke("sandbox", "env")
    assert env.code == 0, env.err
    assert f"export DEPLOYCTL_SANDBOX={elsewhere}" in env.out.splitlines()
    assert said in env.err


def test_the_repositorys_own_sandbox_is_not_announced(invoke: Invoke, project: Path, elsewhere: Path) -> None:
    own = project / ".deployctl" / "sandbox"
    own.mkdir(parents=True)
    (own / "state.json").write_text(elsewhere.read_text().replace(str(elsewhere.parent), str(own)))
    status = invoke("sandbox", "status", "-o", "json")
    assert status.json()["state_file"] == str((own / "state.json").resolve())
    assert "sandbox: using" not in status.err


@pytest.mark.parametrize("how", ["--sandbox DIR", "$DEPLOYCTL_SANDBOX"])
def test_a_sandbox_chosen_explicitly_is_stopped(
    invoke: Invoke, elsewhere: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if how == "$DEPLOYCTL_SANDBOX":  # `eval "$(deployctl sandbox env --sandbox DIR)"` chose it for this shell
        monkeypatch.setenv("DEPLOYCTL_SANDBOX", str(elsewhere))
        args: tuple[str, ...] = ()
    else:
        args = ("--sandbox", str(elsewhere.parent))
    result = invoke("sandbox", "down", *args)
    assert result.code == 0, result.err
    assert not elsewhere.parent.exists()
    assert not where.pointer_path().exists(), "the pointer to it went with it"


def test_with_no_sandbox_anywhere_down_is_a_no_op(invoke: Invoke) -> None:
    result = invoke("sandbox", "down")
    assert (result.code, result.out.strip()) == (0, "sandbox: was not running")


# --------------------------------------------------------------------------- sandbox image: refusals


def _git_repository(project: Path) -> str:
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "pyproject.toml")
    git(project, "commit", "-q", "-m", "init")
    return git(project, "rev-parse", "HEAD")


def test_sandbox_image_refuses_an_unknown_app_with_a_suggestion(invoke: Invoke, project: Path) -> None:
    _git_repository(project)
    result = invoke("sandbox", "image", "wroker")
    assert result.code == 2
    assert "unknown app 'wroker' (did you mean 'worker'?)" in result.err
    assert "apps in pyproject.toml: api, worker" in result.err
    assert "Traceback" not in result.err


@pytest.mark.parametrize("ref", ["no-such-branch", "HEAD^{tree}", "--all"])
def test_sandbox_image_refuses_what_is_not_a_commit(invoke: Invoke, project: Path, ref: str) -> None:
    _git_repository(project)
    result = invoke("sandbox", "image", "api", f"--commit={ref}")
    assert result.code == 2
    assert f"--commit {ref}: {ref!r} is not a commit in {project}" in result.err


def test_sandbox_image_refuses_without_a_sandbox_and_says_every_problem_at_once(invoke: Invoke, project: Path) -> None:
    _git_repository(project)
    alone = invoke("sandbox", "image", "api")
    assert alone.code == 2
    assert f"error: the sandbox is not running (no state at {project / '.deployctl' / 'sandbox' / 'state.json'})" in (
        alone.err
    )
    every = invoke("sandbox", "image", "apo", "--commit", "nope")
    assert every.code == 2
    assert "unknown app 'apo' (did you mean 'api'?)" in every.err
    assert "--commit nope: 'nope' is not a commit" in every.err
    assert "the sandbox is not running" in every.err
    assert "hint: apps in pyproject.toml: api, worker; pass a commit, branch or tag of this repository" in every.err


def test_sandbox_image_offers_exactly_the_marks_behaviours(invoke: Invoke) -> None:
    text = invoke("sandbox", "image", "--help").out
    assert "[crashloop|oom|pull-error|not-ready|fail]" in text.replace("\n", "").replace(" ", "")
    assert "--commit REF" in text
