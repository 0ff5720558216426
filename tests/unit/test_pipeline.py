"""The pipeline's event/ref -> steps mapping, as a table."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployctl.config import DeployctlConfig, load
from deployctl.core.refs import InvalidValueError
from deployctl.release.pipeline import project_version, steps_for, version_bump

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


@pytest.fixture(scope="module")
def bump_config(config: DeployctlConfig) -> DeployctlConfig:
    return config.model_copy(update={"release_on_version_bump": True})


def test_version_bump_route_tags_after_dev_is_deployed(bump_config: DeployctlConfig) -> None:
    """With release_on_version_bump, main ends with the release tag (whose promotion the workflow runs next)."""
    pipeline = steps_for(bump_config, "push", "refs/heads/main")
    steps = {s.id: s for s in pipeline.steps}
    assert [s.id for s in pipeline.steps][-2:] == ["deploy-dev", "release-tag"]
    assert steps["release-tag"].needs == ("deploy-dev",)
    assert steps["release-tag"].run == "deployctl ci release-tag --push"
    assert steps["release-tag"].mutates and steps["release-tag"].env is None, "it writes a tag, not an environment"
    for event, ref in [
        ("pull_request", "refs/pull/7/merge"),
        ("push", "refs/heads/feature/login"),
        ("push", "refs/tags/release-1.4.0"),
        ("push", "refs/heads/shared-terraform"),
    ]:
        assert "release-tag" not in [s.id for s in steps_for(bump_config, event, ref).steps], ref


def test_version_bump_route_is_off_by_default(config: DeployctlConfig) -> None:
    assert not config.release_on_version_bump
    assert "release-tag" not in [s.id for s in steps_for(config, "push", "refs/heads/main").steps]


@pytest.mark.parametrize(
    ("version", "tags", "tag", "reason"),
    [
        ("1.5.0", ["release-1.4.0", "release-1.3.2", "v9.0.0"], "release-1.5.0", "version 1.5.0 is new"),
        ("0.1.0", [], "release-0.1.0", "version 0.1.0 is new"),
        ("1.4.0", ["release-1.4.0"], None, "release-1.4.0 exists: version 1.4.0 is released"),
        ("1.3.9", ["release-1.4.0"], None, "version 1.3.9 is not newer than release-1.4.0"),
        ("1.4.1", ["release-1.4.0", "release-x"], "release-1.4.1", "is new"),
        ("1.4.1", ["release-1.4.0", "release-1.5.0-rc.1"], None, "not newer than release-1.5.0-rc.1"),
        ("1.5.0", ["release-1.5.0-rc.1"], "release-1.5.0", "is new"),  # a release follows its pre-release
    ],
)
def test_version_bump_decision(
    bump_config: DeployctlConfig, version: str, tags: list[str], tag: str | None, reason: str
) -> None:
    bump = version_bump(bump_config, version, tags)
    assert bump.tag == tag
    assert reason in bump.reason
    assert bump.version == version


@pytest.mark.parametrize("version", ["1.5", "1.5.0-rc.1", "one"])
def test_version_bump_refuses_a_version_that_is_no_release(bump_config: DeployctlConfig, version: str) -> None:
    with pytest.raises(InvalidValueError):
        version_bump(bump_config, version, [])


def test_project_version() -> None:
    assert project_version('[project]\nname = "x"\nversion = "1.5.0"\n') == "1.5.0"
    assert project_version('[tool.poetry]\nversion = "2.0.0"\n') == "2.0.0"
    assert project_version((REPO / "pyproject.toml").read_text()) == "0.1.0"
    with pytest.raises(InvalidValueError, match="no static project.version"):
        project_version('[project]\nname = "x"\ndynamic = ["version"]\n')
    with pytest.raises(InvalidValueError, match="not valid TOML"):
        project_version("[project\n")
