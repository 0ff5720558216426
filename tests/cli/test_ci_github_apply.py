"""`deployctl ci github-apply`: the checked-in .github/settings applied to GitHub, idempotently.

Against a fake GitHub API (tests/cli/fake_github.py): there is no GitHub offline. The fake keeps state the way
GitHub does and records every request, so these check what is sent, and that nothing is sent twice.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import Invoke
from tests.cli.fake_github import State, fake_github

REPO = Path(__file__).resolve().parents[2]
TOKEN = "ghp_planted0secret0token0never0shown"


@pytest.fixture
def github(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[State]:
    shutil.copytree(REPO / ".github" / "settings", project / ".github" / "settings")
    state = State(token=TOKEN)
    with fake_github(state) as url:
        monkeypatch.setenv("GITHUB_API_URL", url)
        monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
        monkeypatch.delenv("GH_TOKEN", raising=False)
        monkeypatch.setenv("GITHUB_REPOSITORY", "acme/api")
        yield state


def _writes(state: State) -> list[tuple[str, str]]:
    return sorted((r.method, r.path) for r in state.writes())


def test_the_first_run_creates_everything_and_the_next_writes_nothing(github: State, invoke: Invoke) -> None:
    done = invoke("ci", "github-apply")
    assert done.code == 0, done.err
    environments = ["dev", "prod", "release", "shared"]
    policies = {"dev": 1, "prod": 2, "release": 1, "shared": 1}
    expected = sorted(
        [("POST", "/repos/acme/api/rulesets")] * 4
        + [("PUT", f"/repos/acme/api/environments/{e}") for e in environments]
        + [
            ("POST", f"/repos/acme/api/environments/{e}/deployment-branch-policies")
            for e, n in policies.items()
            for _ in range(n)
        ]
        + [("PUT", "/repos/acme/api/actions/oidc/customization/sub")]
    )
    assert _writes(github) == expected
    assert {r.authorization for r in github.requests} == {f"Bearer {TOKEN}"}
    assert github.oidc == {"use_default": False, "include_claim_keys": ["repo", "context", "job_workflow_ref"]}
    prod = next(r.body for r in github.writes() if r.path.endswith("/environments/prod"))
    assert prod["reviewers"] == [{"type": "Team", "id": 4242}], "the team's slug resolved to its id"
    assert (prod["prevent_self_review"], prod["can_admins_bypass"]) == (True, False)
    assert "$comment" not in prod and "deployment_branch_policies" not in prod
    assert {(p["name"], p["type"]) for p in github.policies["prod"]} == {("main", "branch"), ("release-*", "tag")}
    assert "environment prod: create" in done.out and TOKEN not in done.out + done.err

    github.requests.clear()
    again = invoke("ci", "github-apply")
    assert again.code == 0 and github.writes() == [], "GitHub already matches: nothing is written"
    assert "nothing to change" in again.out
    assert invoke("ci", "github-apply", "--check").code == 0


def test_drift_is_reported_by_check_and_only_the_drift_is_put_back(github: State, invoke: Invoke) -> None:
    assert invoke("ci", "github-apply").code == 0
    tags = next(i for i, r in github.rulesets.items() if r["name"] == "release tags: never moved or deleted")
    github.rulesets[tags]["bypass_actors"] = [{"actor_id": 5, "actor_type": "RepositoryRole", "bypass_mode": "always"}]
    github.policies["prod"].append({"id": 9001, "name": "feature/*", "type": "branch"})
    github.environments["shared"]["protection_rules"] = []  # someone removed the required reviewers
    github.oidc = {"use_default": True}
    github.requests.clear()

    check = invoke("-o", "json", "ci", "github-apply", "--check")
    assert check.code == 3 and github.writes() == [], "--check writes nothing and exits 3"
    changes = {(c["what"], c["action"], c["request"]) for c in check.json()["changes"]}
    assert changes == {
        ("ruleset", "update", f"PUT /repos/acme/api/rulesets/{tags}"),
        (
            "deployment branch policy",
            "delete",
            "DELETE /repos/acme/api/environments/prod/deployment-branch-policies/9001",
        ),
        ("environment", "update", "PUT /repos/acme/api/environments/shared"),
        ("OIDC subject", "update", "PUT /repos/acme/api/actions/oidc/customization/sub"),
    }

    done = invoke("ci", "github-apply")
    assert done.code == 0
    assert sorted(f"{m} {p}" for m, p in _writes(github)) == sorted(c[2] for c in changes)
    assert github.rulesets[tags]["bypass_actors"] == [], "tags are never moved or deleted, maintainers included"
    assert invoke("ci", "github-apply", "--check").code == 0


def test_a_refused_token_is_exit_2_and_the_token_is_never_shown(github: State, invoke: Invoke) -> None:
    github.token = "another-token"
    done = invoke("ci", "github-apply")
    assert done.code == 2 and "Traceback" not in done.err
    assert "HTTP 401" in done.err and "Bad credentials" in done.err and "GITHUB_TOKEN" in done.err
    debug = invoke("-vv", "ci", "github-apply")  # every request logged, and the traceback
    assert debug.code == 2 and "GET " in debug.err and TOKEN not in done.out + done.err + debug.out + debug.err
    assert github.writes() == []


def test_missing_token_repository_or_settings_are_usage_errors(
    github: State, invoke: Invoke, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN")
    assert invoke("ci", "github-apply").code == 2
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.delenv("GITHUB_REPOSITORY")
    done = invoke("ci", "github-apply")
    assert done.code == 2 and "--repo" in done.err
    assert invoke("ci", "github-apply", "--repo", "not a repo").code == 2

    (project / ".github" / "settings" / "rulesets" / "main.json").write_text("{ not json")
    prod = project / ".github" / "settings" / "environments" / "prod.json"
    prod.write_text(json.dumps({**json.loads(prod.read_text()), "reviewer": []}))
    done = invoke("ci", "github-apply", "--repo", "acme/api")
    assert done.code == 2
    assert "main.json:1:3: not JSON" in done.err and "unknown key 'reviewer'" in done.err, "every problem at once"
    assert github.requests == [], "nothing is asked of GitHub before the files are valid"


def test_an_unknown_reviewer_is_refused_before_anything_is_written(github: State, invoke: Invoke) -> None:
    github.teams.clear()
    done = invoke("ci", "github-apply")
    assert done.code == 2 and "reviewer Team 'maintainers'" in done.err
    assert github.writes() == []


def test_a_failure_midway_says_what_was_applied_and_a_rerun_finishes(github: State, invoke: Invoke) -> None:
    github.fail_on = ("PUT", "/repos/acme/api/environments/prod", 422)
    done = invoke("ci", "github-apply")
    assert done.code == 1
    assert "environment prod: create: GitHub answered PUT" in done.err and "HTTP 422" in done.err
    assert "applied before it: ruleset 'main': create" in done.err
    written = len(github.writes())
    github.fail_on = None
    github.requests.clear()
    assert invoke("ci", "github-apply").code == 0
    assert ("POST", "/repos/acme/api/rulesets") not in _writes(github), "what was applied is not written again"
    assert ("PUT", "/repos/acme/api/environments/prod") in _writes(github)
    assert written + len(github.writes()) == 14 + 1, "the failed request, then the rest once"


def test_the_token_never_goes_over_plain_http_to_another_host(
    github: State, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_API_URL", "http://github.example.com/api/v3")
    done = invoke("ci", "github-apply")
    assert done.code == 2 and "plain http" in done.err
    assert github.requests == []
