"""A saved plan's fingerprint covers what terraform init wrote (.terraform.lock.hcl), so the first plan of a
new root applies; a refusal names the file that changed."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import pytest

from deployctl.app import plan as plan_app
from deployctl.app.context import EnvContext
from deployctl.config import load
from deployctl.core.errors import PolicyError
from deployctl.runner import CommandResult
from deployctl.terraform import saved_plan
from deployctl.terraform import workspace as infra
from tests.unit.fakes import Events
from tests.unit.test_plan_adapter import FakeRunner, _runner, _target

LOCK = (
    '# This file is maintained automatically by "terraform init".\nprovider "registry.terraform.io/hashicorp/aws" {}\n'
)


class InitWritesLockFile(FakeRunner):
    """terraform init, as the real one does in a new root, writes the dependency lock file there."""

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
        if list(argv[:2]) == ["terraform", "init"] and cwd is not None:
            (cwd / ".terraform.lock.hcl").write_text(LOCK)
        return super().run(argv, cwd=cwd, env=env, timeout=timeout, ok_codes=ok_codes, stream=stream, hint=hint)


def _lock_writing_runner() -> InitWritesLockFile:
    return InitWritesLockFile(_runner().answers)


def test_first_plan_of_a_new_root_is_accepted_by_apply(tmp_path: Path) -> None:
    runner = _lock_writing_runner()
    target, _ = _target(tmp_path, runner)
    assert not (tmp_path / "tf" / ".terraform.lock.hcl").exists(), "a new root: init has not run"
    plan_app.plan(target)
    assert (tmp_path / "tf" / ".terraform.lock.hcl").is_file(), "the fake init wrote the lock file"
    prepared = target.terraform()  # what apply prepares: the lock file is there now
    saved = saved_plan.load_saved(prepared)
    assert saved is not None
    assert "tf/.terraform.lock.hcl" in saved.inputs, "the fingerprint was taken after init"
    saved_plan.verify_saved(prepared, saved, runner)  # accepted: nothing changed since the plan

    runner.calls.clear()
    infra.ensure_init(prepared)
    assert runner.calls == [], "init's own stamp covers the lock file it wrote: no second init"


def test_refusal_names_the_file_that_changed(tmp_path: Path) -> None:
    runner = _lock_writing_runner()
    target, _ = _target(tmp_path, runner)
    plan_app.plan(target)
    saved = saved_plan.load_saved(target.terraform())
    assert saved is not None
    variables = tmp_path / "tf" / "variables.tf"
    variables.write_text(variables.read_text() + "# edited\n")
    (tmp_path / "tf" / "outputs.tf").write_text("# new\n")
    (tmp_path / "tf" / ".terraform.lock.hcl").unlink()
    with pytest.raises(PolicyError) as caught:
        saved_plan.verify_saved(target.terraform(), saved, runner)
    message = caught.value.message
    assert (
        "the configuration or terraform files changed since it was made: tf/variables.tf changed, "
        "tf/outputs.tf added, tf/.terraform.lock.hcl removed" in message
    ), message


def test_a_changed_environment_setting_is_named(tmp_path: Path) -> None:
    runner = _lock_writing_runner()
    target, _ = _target(tmp_path, runner)
    plan_app.plan(target)
    saved = saved_plan.load_saved(target.terraform())
    assert saved is not None
    config = tmp_path / "pyproject.toml"
    config.write_text(config.read_text().replace("az_count = 3", "az_count = 4"))
    changed = EnvContext(load(config), "dev", runner, Events())
    with pytest.raises(PolicyError, match=r"changed since it was made: \[tool.deployctl.environments.dev\] changed"):
        saved_plan.verify_saved(changed.terraform(), saved, runner)
    metadata = json.loads((tmp_path / ".deployctl/plans/dev/plan.json").read_text())
    assert set(metadata["inputs"]) >= {"[tool.deployctl.environments.dev]", "tf/variables.tf"}
