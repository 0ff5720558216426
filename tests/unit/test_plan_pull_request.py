"""A pull request's plan: its role may write nothing (no lock file: -lock=false) and read no protected state (a
protected environment is planned -refresh=false against the empty pull-requests/ key); nothing of it is saved for
apply, and a saved plan of main is left as it is. Recorded terraform argv (the table of flags is in
test_terraform_args.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deployctl.app import plan as plan_app
from deployctl.cli.main import main
from tests.unit.test_plan_adapter import _runner, _target


def _flags(argv: list[str]) -> set[str]:
    return {a for a in argv if a.startswith("-") and not a.startswith(("-var", "-out", "-backend-config=endpoints"))}


def test_a_pull_request_plans_a_protected_environment_without_its_state(tmp_path: Path) -> None:
    runner = _runner()
    prod, events = _target(tmp_path, runner, "prod")
    saved = tmp_path / ".deployctl/plans/prod"
    saved.mkdir(parents=True)
    (saved / "plan.tfplan").write_text("main's reviewed plan")
    (saved / "plan.json").write_text("{}")

    result = plan_app.plan(prod, pull_request=True)

    init, plan, show = runner.calls
    assert "-backend-config=key=pull-requests/prod/terraform.tfstate" in init, "the empty key, never prod's state"
    assert not any(a == "-backend-config=key=prod/terraform.tfstate" for a in init)
    assert {"-lock=false", "-refresh=false"} <= _flags(plan)
    assert show[:3] == ["terraform", "show", "-json"]
    data = result.data()["terraform"]
    assert data["pull_request"] is True and data["state_read"] is False and data["plan_file"] is None
    assert not (saved / "pull-request.tfplan").exists(), "nothing of a pull request's plan is kept"
    assert (saved / "plan.tfplan").read_text() == "main's reviewed plan", "main's saved plan is left alone"
    assert (saved / "plan.json").exists()
    assert (tmp_path / ".deployctl/terraform/prod-pull-request").is_dir(), "a data dir of its own (its backend key)"
    assert any("its state is not read" in line for line in result.text())
    assert not any("apply it with" in line for line in result.text())
    del events


def test_a_pull_request_plans_dev_with_its_state_and_no_lock(tmp_path: Path) -> None:
    runner = _runner()
    dev, _ = _target(tmp_path, runner, "dev")

    result = plan_app.plan(dev, pull_request=True)

    init, plan, _show = runner.calls
    assert "-backend-config=key=dev/terraform.tfstate" in init
    assert "-lock=false" in plan and "-refresh=false" not in plan, "dev's own state, refreshed, never locked"
    assert not any(a.startswith("-lock-timeout") for a in plan)
    assert result.data()["terraform"]["state_read"] is True
    assert not (tmp_path / ".deployctl/plans/dev/plan.json").exists(), "never saved for apply"
    assert not (tmp_path / ".deployctl/plans/dev/pull-request.tfplan").exists()


def test_main_plans_lock_and_save_as_before(tmp_path: Path) -> None:
    runner = _runner()
    prod, _ = _target(tmp_path, runner, "prod")

    plan_app.plan(prod)

    init, plan, *_ = runner.calls
    assert "-backend-config=key=prod/terraform.tfstate" in init
    assert "-lock=false" not in plan and "-refresh=false" not in plan
    assert (tmp_path / ".deployctl/plans/prod/plan.json").is_file()


@pytest.mark.parametrize(
    ("event", "args", "expected"),
    [
        ("pull_request", [], True),
        ("pull_request_target", [], True),
        ("push", [], False),
        (None, [], False),
        ("pull_request", ["--no-pr"], False),
        ("push", ["--pr"], True),
    ],
)
def test_the_cli_takes_a_pull_request_from_the_ci_event(
    event: str | None,
    args: list[str],
    expected: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """GitHub's pull_request runs plan as pull requests even when the workflow does not say --pr."""
    seen: list[bool] = []

    def fake_plan(ctx: Any, *, image_tag: str | None = None, pull_request: bool = False) -> Any:
        del ctx, image_tag
        seen.append(pull_request)
        return plan_app.PlanResult(env="dev", terraform=None)

    _target(tmp_path, _runner(), "dev")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(plan_app, "plan", fake_plan)
    if event is None:
        monkeypatch.delenv("GITHUB_EVENT_NAME", raising=False)
    else:
        monkeypatch.setenv("GITHUB_EVENT_NAME", event)
    assert main(["-o", "json", "plan", "dev", *args]) == 0
    assert seen == [expected]
    assert json.loads(capsys.readouterr().out)["env"] == "dev"
