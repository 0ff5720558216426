"""The terraform adapter and the plan/apply/destroy use cases with a recording runner: exit-code decisions, state-lock
error parsing, saved-plan verification, protected environments, change windows."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deployctl.app import plan as plan_app
from deployctl.app.apply import apply
from deployctl.app.context import EnvContext
from deployctl.app.destroy import destroy
from deployctl.config import load
from deployctl.core.errors import CommandFailedError, ExitCode, LockedError, PolicyError, UsageError
from deployctl.redact import Redactor
from deployctl.runner import CommandResult
from deployctl.terraform import saved_plan
from tests.unit.fakes import Events
from tests.unit.test_plan_summary import C0FFEE, LOCKED_STDERR, SHOW

# --------------------------------------------------------------------------- the adapter with a recording runner


@dataclass
class FakeRunner:
    """Records calls; answers each terraform subcommand with a canned (exit code, stdout, stderr)."""

    answers: Mapping[str, tuple[int, str, str]]
    redactor: Redactor = field(default_factory=Redactor)
    calls: list[list[str]] = field(default_factory=list)

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        ok_codes: Collection[int] = (0,),
        stream: bool = False,
        hint: str | None = None,
    ) -> CommandResult:
        del cwd, timeout, stream, hint  # the protocol's parameters this fake does not need
        argv = list(argv)
        self.calls.append(argv)
        subcommand = argv[3] if argv[:2] == ["git", "-C"] else argv[1]
        code, out, err = self.answers.get(subcommand, (0, "", ""))
        if argv[1] == "plan" and code in (0, 2):
            Path(argv[5].removeprefix("-out=")).write_text("plan-bytes")
        if argv[1] == "init" and env is not None:
            Path(env["TF_DATA_DIR"], "terraform.tfstate").write_text("{}")
        if code not in ok_codes:
            raise CommandFailedError(argv, code, err)
        return CommandResult(argv=argv, exit_code=code, stdout=out, stderr=err, duration=0.01)


CONFIG = """
[tool.deployctl]
state_dir = ".deployctl"
[tool.deployctl.environments.dev]
aws = { region = "us-east-1", endpoint_url = "http://127.0.0.1:1" }
terraform = { root = "tf", backend = { bucket = "acme-api-tfstate", key = "dev/terraform.tfstate", region = "us-east-1" }, vars = { az_count = 3 } }
[tool.deployctl.environments.prod]
aws = { region = "us-east-1" }
terraform = { root = "tf", backend = { bucket = "acme-api-tfstate", key = "prod/terraform.tfstate", region = "us-east-1" } }
protected = true
"""


def _target(tmp_path: Path, runner: FakeRunner, name: str = "dev") -> tuple[EnvContext, Events]:
    (tmp_path / "pyproject.toml").write_text(CONFIG)
    tf = tmp_path / "tf"
    tf.mkdir(exist_ok=True)
    (tf / "variables.tf").write_text(
        'variable "environment" {}\nvariable "aws_endpoint_url" {}\nvariable "aws_skip_checks" {}\nvariable "az_count" {}\n'
    )
    events = Events()
    return EnvContext(load(tmp_path / "pyproject.toml"), name, runner, events), events


def _runner(plan_code: int = 2, show: Mapping[str, Any] = SHOW, plan_err: str = "") -> FakeRunner:
    return FakeRunner(
        {
            "plan": (plan_code, "", plan_err),
            "show": (0, json.dumps(show), ""),
            "rev-parse": (0, C0FFEE + "\n", ""),
        }
    )


def test_plan_saves_plan_and_metadata_and_passes_vars(tmp_path: Path) -> None:
    runner = _runner()
    target, events = _target(tmp_path, runner)
    result = plan_app.plan(target)

    assert result.has_changes
    init, plan, show, git = runner.calls
    assert init[:2] == ["terraform", "init"]
    assert '-backend-config=endpoints={s3="http://127.0.0.1:1"}' in init
    assert plan[plan.index("-var") :] == [
        "-var",
        "environment=dev",
        "-var",
        "aws_endpoint_url=http://127.0.0.1:1",
        "-var",
        "aws_skip_checks=true",
        "-var",
        "az_count=3",
    ]
    assert show[:3] == ["terraform", "show", "-json"]
    assert git[0] == "git" and "rev-parse" in git
    meta = json.loads((tmp_path / ".deployctl/plans/dev/plan.json").read_text())
    assert meta["commit"] == C0FFEE
    assert meta["counts"] == {"add": 1, "change": 1, "destroy": 1, "replace": 1}
    assert any("will be REPLACED" in line for line in events.lines), "replacements are warned about on stderr"
    assert any("will be DESTROYED" in line for line in events.lines), "destroys are warned about on stderr"

    # a second plan with the same inputs skips init
    runner.calls.clear()
    plan_app.plan(target)
    assert [c[1] for c in runner.calls] == ["plan", "show", "-C"]
    assert "dev: terraform init: up to date" in events.lines


def test_plan_error_exit_is_an_error_not_changes(tmp_path: Path) -> None:
    target, _ = _target(tmp_path, _runner(plan_code=1, plan_err="Error: Unsupported argument\n  on main.tf line 3"))
    with pytest.raises(CommandFailedError) as caught:
        plan_app.plan(target)
    assert "Unsupported argument" in caught.value.message
    assert not (tmp_path / ".deployctl/plans/dev/plan.tfplan").exists()


def test_state_lock_error_becomes_locked_error(tmp_path: Path) -> None:
    target, _ = _target(tmp_path, _runner(plan_code=1, plan_err=LOCKED_STDERR))
    with pytest.raises(LockedError) as caught:
        plan_app.plan(target)
    assert caught.value.exit_code == ExitCode.LOCKED
    assert "runner@ci-host-7" in caught.value.message
    assert caught.value.hint is not None
    assert "deployctl lock break dev --state --id 6c0bf6f8-56b5-9a0f-8d3f-1a4d3f9c2c11" in caught.value.hint


def test_unknown_exit_code_is_an_error(tmp_path: Path) -> None:
    target, _ = _target(tmp_path, _runner(plan_code=3))
    with pytest.raises(CommandFailedError):
        plan_app.plan(target)


def test_undeclared_config_vars_and_missing_root_are_usage_errors(tmp_path: Path) -> None:
    target, _ = _target(tmp_path, _runner())
    (tmp_path / "tf" / "variables.tf").write_text('variable "environment" {}\n')
    with pytest.raises(UsageError, match="does not declare: az_count"):
        plan_app.plan(target)
    (tmp_path / "tf" / "variables.tf").unlink()
    (tmp_path / "tf").rmdir()
    with pytest.raises(UsageError, match=r"terraform root .*/tf does not exist \(tool.deployctl.environments.dev"):
        plan_app.plan(target)


def test_saved_plan_verification(tmp_path: Path) -> None:
    runner = _runner()
    target, _ = _target(tmp_path, runner)
    plan_app.plan(target)
    prepared = target.terraform()
    saved = saved_plan.load_saved(prepared)
    assert saved is not None
    saved_plan.verify_saved(prepared, saved, runner)  # fresh and matching: accepted

    later = datetime.now(UTC) + timedelta(minutes=121)
    with pytest.raises(PolicyError, match="minutes old"):
        saved_plan.verify_saved(prepared, saved, runner, now=later)

    (tmp_path / "tf" / "main.tf").write_text("# changed\n")
    changed = target.terraform()
    runner.answers = {**runner.answers, "rev-parse": (0, "d00d" * 10 + "\n", "")}
    with pytest.raises(PolicyError) as caught:
        saved_plan.verify_saved(changed, saved, runner)
    assert caught.value.exit_code == ExitCode.REFUSED
    problems = caught.value.details["problems"]
    assert isinstance(problems, list) and len(problems) == 2, "every mismatch is reported at once"


def test_protected_env_refuses_auto_approve_and_missing_plan(tmp_path: Path) -> None:
    runner = _runner()
    target, _ = _target(tmp_path, runner, "prod")
    with pytest.raises(PolicyError, match="--auto-approve is refused"):
        apply(target, auto_approve=True)
    with pytest.raises(PolicyError, match="no saved plan for protected"):
        apply(target)
    assert runner.calls == [], "nothing ran"


def test_apply_without_plan_or_tty_names_the_flag(tmp_path: Path) -> None:
    target, _ = _target(tmp_path, _runner())
    with pytest.raises(UsageError) as caught:
        apply(target)
    assert caught.value.hint is not None and "--auto-approve" in caught.value.hint


def _yes(lines: list[str], answer: str) -> bool:
    del lines, answer
    return True


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"confirm": _yes, "ci": False}, "--allow-prod-destroy was not passed"),
        ({"allow_prod_destroy": True, "ci": False}, "stdin is not a terminal"),
        ({"allow_prod_destroy": True, "ci": True, "confirm": _yes}, "CI is set"),
    ],
)
def test_protected_destroy_refusals(tmp_path: Path, kwargs: dict[str, Any], reason: str) -> None:
    runner = _runner()
    target, _ = _target(tmp_path, runner, "prod")
    with pytest.raises(PolicyError, match=reason):
        destroy(target, **kwargs)
    assert runner.calls == []


def test_destroy_without_tty_needs_auto_approve(tmp_path: Path) -> None:
    target, _ = _target(tmp_path, _runner())
    with pytest.raises(UsageError, match="stdin is not a terminal"):
        destroy(target)


def test_no_change_plan_skips_show(tmp_path: Path) -> None:
    runner = _runner(plan_code=0)
    target, _ = _target(tmp_path, runner)
    result = plan_app.plan(target)
    assert not result.has_changes
    assert [c[1] for c in runner.calls] == ["init", "plan", "-C"], "exit 0 is an empty diff: no show -json"
    assert runner.calls[-1][3] == "rev-parse"
    assert result.text()[0] == "dev: terraform: no changes"


def test_one_root_for_every_environment_takes_its_var_file_and_region(tmp_path: Path) -> None:
    runner = _runner()
    _target(tmp_path, runner)  # writes the configuration and the root
    config = (tmp_path / "pyproject.toml").read_text()
    (tmp_path / "tf" / "variables.tf").write_text(
        'variable "environment" {}\nvariable "region" {}\nvariable "aws_endpoint_url" {}\n'
        'variable "aws_skip_checks" {}\nvariable "az_count" {}\n'
    )
    (tmp_path / "tf" / "dev.tfvars").write_text("az_count = 2\n")
    (tmp_path / "tf" / "prod.tfvars").write_text("az_count = 3\n")
    (tmp_path / "pyproject.toml").write_text(
        config.replace('root = "tf", ', 'root = "tf", var_file = "tf/dev.tfvars", ', 1)
    )
    target, _ = _target_from_written(tmp_path, runner)
    plan_app.plan(target)
    plan = next(c for c in runner.calls if c[1] == "plan")
    var_file = plan.index(f"-var-file={tmp_path / 'tf' / 'dev.tfvars'}")
    assert var_file < plan.index("-var"), "deployctl's -var come after the file, so they win"
    assert "region=us-east-1" in plan and "environment=dev" in plan

    # prod's variables file is not dev's input: changing it keeps dev's saved plan valid
    prepared = target.terraform()
    saved = saved_plan.load_saved(prepared)
    assert saved is not None
    (tmp_path / "tf" / "prod.tfvars").write_text("az_count = 4\n")
    saved_plan.verify_saved(target.terraform(), saved, runner)
    (tmp_path / "tf" / "dev.tfvars").write_text("az_count = 5\n")
    with pytest.raises(PolicyError, match="configuration or terraform files changed"):
        saved_plan.verify_saved(target.terraform(), saved, runner)

    (tmp_path / "tf" / "dev.tfvars").unlink()
    with pytest.raises(
        UsageError, match=r"dev.tfvars does not exist \(tool.deployctl.environments.dev.terraform.var_file\)"
    ):
        target.terraform()


def _target_from_written(tmp_path: Path, runner: FakeRunner) -> tuple[EnvContext, Events]:
    events = Events()
    return EnvContext(load(tmp_path / "pyproject.toml"), "dev", runner, events), events


def test_apply_is_refused_during_a_change_window_and_changes_nothing(tmp_path: Path) -> None:
    """A window always in force (dated, around now): apply refuses before the lock or terraform; with
    --override-freeze --reason it goes on (the override is the gate's, tested in test_freeze_gate)."""
    runner = _runner()
    _target(tmp_path, runner)
    now = datetime.now(UTC)
    span = f"{(now - timedelta(days=1)):%Y-%m-%d} - {(now + timedelta(days=2)):%Y-%m-%d}: the release week"
    config = (
        (tmp_path / "pyproject.toml")
        .read_text()
        .replace(
            "[tool.deployctl.environments.dev]\n",
            f'[tool.deployctl.environments.dev]\nfreeze = {{ timezone = "UTC", dated = {{ release-week = "{span}" }} }}\n',
        )
    )
    (tmp_path / "pyproject.toml").write_text(config)
    target, _ = _target_from_written(tmp_path, runner)
    with pytest.raises(PolicyError, match="apply into dev refused: dev is frozen by 'release-week'"):
        apply(target, auto_approve=True)
    assert [c for c in runner.calls if c[0] == "terraform"] == [], "nothing ran"
