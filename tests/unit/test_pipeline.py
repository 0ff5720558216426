"""The pipeline's event/ref -> steps mapping, as a table."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployctl.config import DeployctlConfig, load
from deployctl.model import InvalidValueError
from deployctl.pipeline import steps_for

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def config() -> DeployctlConfig:
    return load(REPO / "pyproject.toml").settings


@pytest.mark.parametrize(
    ("event", "ref", "kind", "step_ids"),
    [
        ("pull_request", "refs/pull/7/merge", "pull-request", ["check", "test", "plan-dev", "plan-prod"]),
        (
            "push",
            "refs/heads/main",
            "main",
            ["check", "test", "plan-dev", "plan-prod", "build-image", "apply-dev", "deploy-dev"],
        ),
        ("push", "refs/tags/release-1.4.0", "release", ["promote"]),
        ("push", "refs/heads/shared-terraform", "shared", ["plan-shared", "apply-shared"]),
        ("push", "refs/heads/feature/login", "branch", ["check", "test", "plan-dev"]),
        ("push", "refs/tags/v1.0.0", "none", []),
        ("push", "refs/tags/release-1.4", "none", []),
        ("push", "refs/tags/release-1.4.0-rc.1", "none", []),
        ("push", "refs/notes/commits", "none", []),
    ],
)
def test_steps_table(config: DeployctlConfig, event: str, ref: str, kind: str, step_ids: list[str]) -> None:
    pipeline = steps_for(config, event, ref)
    assert pipeline.kind == kind
    assert [s.id for s in pipeline.steps] == step_ids


def test_release_promotes_without_rebuild_and_only_prod(config: DeployctlConfig) -> None:
    pipeline = steps_for(config, "push", "refs/tags/release-1.4.0")
    assert pipeline.release == "release-1.4.0"
    assert [s.run for s in pipeline.steps] == ["deployctl promote release-1.4.0"]
    assert not any("build" in s.run for s in pipeline.steps)
    assert pipeline.environments == ("prod",)


def test_main_deploys_dev_after_build_and_apply(config: DeployctlConfig) -> None:
    steps = {s.id: s for s in steps_for(config, "push", "refs/heads/main").steps}
    assert set(steps["deploy-dev"].needs) == {"build-image", "apply-dev"}
    assert steps["apply-dev"].run == "deployctl apply dev --auto-approve"
    assert steps["deploy-dev"].env == "dev"
    # prod is planned on main (the reviewed plan) but never applied or deployed from a branch push
    assert not any(s.mutates and s.env == "prod" for s in steps.values())


def test_shared_branch_touches_only_terraform_only_environments(config: DeployctlConfig) -> None:
    pipeline = steps_for(config, "push", "refs/heads/shared-terraform")
    assert {s.env for s in pipeline.steps} == {"shared"}


def test_pull_request_mutates_nothing(config: DeployctlConfig) -> None:
    assert not any(s.mutates for s in steps_for(config, "pull_request", "refs/pull/1/merge").steps)


def test_unknown_event_is_rejected(config: DeployctlConfig) -> None:
    with pytest.raises(InvalidValueError, match="unknown CI event 'schedule'"):
        steps_for(config, "schedule", "refs/heads/main")
