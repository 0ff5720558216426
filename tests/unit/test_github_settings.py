"""The checked-in GitHub settings (.github/settings) say what the security model needs, and agree with the workflows
and with the subjects the CI roles trust (terraform/README.md); and how a desired object is compared with GitHub's.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from deployctl.adapters.github_settings import Settings, covers, environment_as_put, load
from deployctl.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SETTINGS = REPO / ".github" / "settings"
MAINTAINERS = [{"actor_id": 2, "actor_type": "RepositoryRole", "bypass_mode": "always"}]  # maintain
ADMINS = [{"actor_id": 5, "actor_type": "RepositoryRole", "bypass_mode": "always"}]
DEPLOY_KEY = [{"actor_id": None, "actor_type": "DeployKey", "bypass_mode": "always"}]


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load(SETTINGS)


def _environment(settings: Settings, name: str) -> Any:
    return next(env for env in settings.environments if env.name == name)


def _ruleset(settings: Settings, target: str, rule: str) -> Any:
    return next(r for r in settings.rulesets if r["target"] == target and {"type": rule} in r["rules"])


def test_each_environment_admits_only_the_refs_that_deploy_it(settings: Settings) -> None:
    admitted = {env.name: env.policies for env in settings.environments}
    assert admitted == {
        "dev": {("main", "branch")},
        "prod": {("main", "branch"), ("release-*", "tag")},
        "shared": {("shared-terraform", "branch")},
        "release": {("main", "branch")},
    }
    for env in settings.environments:
        policy = env.body["deployment_branch_policy"]
        assert policy == {"protected_branches": False, "custom_branch_policies": True}, env.name


@pytest.mark.parametrize("name", ["prod", "shared"])
def test_prod_and_shared_need_a_maintainer_who_did_not_start_the_run(settings: Settings, name: str) -> None:
    env = _environment(settings, name)
    assert [(r.type, r.name) for r in env.reviewers] == [("Team", "maintainers")]
    assert env.body["prevent_self_review"] is True and env.body["can_admins_bypass"] is False


def test_every_job_that_names_an_environment_runs_from_a_ref_it_admits(settings: Settings) -> None:
    """The refs each environment job runs from (pipeline.yml's route; apply-prod.yml from main only)."""
    runs_from = {
        ("pipeline.yml", "deploy-develop"): ("main", "branch"),
        ("pipeline.yml", "release-tag"): ("main", "branch"),
    }
    runs_from |= {
        ("pipeline.yml", "promote"): ("release-*", "tag"),
        ("pipeline.yml", "shared-terraform"): ("shared-terraform", "branch"),
    }
    runs_from |= {("apply-prod.yml", "apply"): ("main", "branch")}
    found = {}
    for path in (REPO / ".github" / "workflows").glob("*.yml"):
        for name, job in yaml.safe_load(path.read_text())["jobs"].items():
            if "environment" in job:
                found[(path.name, name)] = job["environment"]
    assert set(found) == set(runs_from), "a new environment job: say which ref it runs from"
    for job, env in found.items():
        assert runs_from[job] in _environment(settings, env).policies, f"{job} cannot run: {env} does not admit its ref"


def test_release_tags_are_created_by_maintainers_and_never_moved_or_deleted(settings: Settings) -> None:
    created = _ruleset(settings, "tag", "creation")
    assert created["conditions"]["ref_name"]["include"] == ["refs/tags/release-*"]
    assert created["bypass_actors"] == MAINTAINERS + ADMINS + DEPLOY_KEY
    immutable = _ruleset(settings, "tag", "update")
    assert immutable["conditions"]["ref_name"]["include"] == ["refs/tags/release-*"]
    assert {"type": "deletion"} in immutable["rules"] and immutable["bypass_actors"] == [], "not even admins"
    assert all(r["enforcement"] == "active" for r in settings.rulesets)


@pytest.mark.parametrize(("branch", "bypass"), [("main", DEPLOY_KEY), ("shared-terraform", [])])
def test_main_and_shared_terraform_change_only_through_reviewed_pull_requests(
    settings: Settings, branch: str, bypass: list[dict[str, Any]]
) -> None:
    ruleset = next(r for r in settings.rulesets if r["conditions"]["ref_name"]["include"] == [f"refs/heads/{branch}"])
    rules = {rule["type"]: rule.get("parameters") for rule in ruleset["rules"]}
    assert {"deletion", "non_fast_forward", "pull_request"} <= set(rules)
    assert rules["pull_request"]["required_approving_review_count"] >= 1
    assert rules["pull_request"]["dismiss_stale_reviews_on_push"] is True
    assert ruleset["bypass_actors"] == bypass, "main: only the deploy key promote pushes the values record with"


def test_the_oidc_subject_is_the_one_the_ci_roles_trust(settings: Settings) -> None:
    assert dict(settings.oidc_sub) == {
        "use_default": False,
        "include_claim_keys": ["repo", "context", "job_workflow_ref"],
    }
    readme = (REPO / "terraform" / "README.md").read_text()
    documented = re.search(r'\{"use_default": false, "include_claim_keys": \[[^]]*\]\}', readme)
    assert documented and json.loads(documented.group(0)) == settings.oidc_sub, "terraform/README.md, CI roles"


def test_bad_files_are_reported_together(tmp_path: Path) -> None:
    (tmp_path / "environments").mkdir()
    (tmp_path / "rulesets").mkdir()
    (tmp_path / "environments" / "prod.json").write_text(
        json.dumps({"reviewers": [{"type": "Team"}], "deployment_branch_policies": [{"name": "main"}], "waittimer": 1})
    )
    (tmp_path / "rulesets" / "a.json").write_text(json.dumps({"name": "a", "target": "tag"}))
    (tmp_path / "oidc-sub.json").write_text("[]")
    with pytest.raises(ConfigError) as raised:
        load(tmp_path)
    text = "\n".join(raised.value.problems)
    for expected in (
        "reviewers[0]",
        "deployment_branch_policies[0]",
        "unknown key 'waittimer'",
        "needs enforcement, rules",
        "oidc-sub.json",
    ):
        assert expected in text


# --------------------------------------------------------------------------- comparing with GitHub


def test_covers_ignores_what_github_adds_and_the_order_of_lists() -> None:
    desired = {
        "rules": [{"type": "deletion"}, {"type": "pull_request", "parameters": {"required_approving_review_count": 1}}]
    }
    rules: list[dict[str, Any]] = [
        {
            "type": "pull_request",
            "parameters": {"required_approving_review_count": 1, "allowed_merge_methods": ["merge"]},
        },
        {"type": "deletion"},
    ]
    actual = {"id": 7, "rules": rules}
    assert covers(actual, desired)
    assert not covers({"rules": [{"type": "deletion"}]}, desired), "a missing rule"
    assert not covers({"rules": [*rules, {"type": "update"}]}, desired), "an extra rule"
    assert not covers(
        {"rules": [{"type": "deletion"}, {"type": "deletion"}]}, {"rules": [{"type": "deletion"}, {"type": "x"}]}
    )
    assert not covers({"a": 0}, {"a": False}) and not covers({"a": None}, {"a": 2}), "types count"


def test_an_environment_as_github_returns_it_compares_with_its_put_body() -> None:
    actual = {
        "can_admins_bypass": False,
        "protection_rules": [
            {
                "id": 1,
                "type": "required_reviewers",
                "prevent_self_review": True,
                "reviewers": [{"type": "Team", "reviewer": {"id": 42, "slug": "m"}}],
            },
            {"id": 2, "type": "branch_policy"},
        ],
        "deployment_branch_policy": {"protected_branches": False, "custom_branch_policies": True},
    }
    assert environment_as_put(actual) == {
        "wait_timer": 0,
        "prevent_self_review": True,
        "can_admins_bypass": False,
        "reviewers": [{"type": "Team", "id": 42}],
        "deployment_branch_policy": {"protected_branches": False, "custom_branch_policies": True},
    }
    assert environment_as_put({})["reviewers"] == [] and environment_as_put({})["can_admins_bypass"] is True
