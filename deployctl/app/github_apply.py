"""``deployctl ci github-apply``: make the repository's GitHub settings what ``.github/settings`` says.

Idempotent: everything is read first (environments and their deployment branch policies, rulesets, the OIDC
subject, the reviewers' ids), compared, and only what differs is written, in one pass. With ``check`` nothing is
written (exit 3 when something differs, like ``plan --detailed-exitcode``). Rulesets and environments the files do
not name are left alone (a ruleset only adds restrictions); a deployment branch policy the files do not list is
deleted (it would let another ref reach the environment's secrets and roles).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from deployctl.adapters.github import GitHubApi
from deployctl.adapters.github_settings import GitHubEnvironment, Reviewer, Settings, differences, environment_as_put
from deployctl.core.errors import DeployctlError, UsageError

REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class SettingsChange:
    what: str  # environment, deployment branch policy, ruleset, OIDC subject
    name: str
    action: str  # create, update, delete
    detail: str
    method: str
    path: str
    body: Mapping[str, Any] | None = None

    def data(self) -> dict[str, str]:
        request = f"{self.method} {self.path}"
        return {"what": self.what, "name": self.name, "action": self.action, "detail": self.detail, "request": request}

    def __str__(self) -> str:
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.what} {self.name}: {self.action}{detail}"


@dataclass(frozen=True)
class GitHubApplyResult:
    repository: str
    changes: tuple[SettingsChange, ...]
    applied: bool
    command: str = "ci github-apply"

    def data(self) -> Mapping[str, Any]:
        return {
            "repository": self.repository,
            "in_sync": not self.changes,
            "applied": self.applied,
            "changes": [c.data() for c in self.changes],
        }

    def text(self) -> Sequence[str]:
        if not self.changes:
            return [f"{self.repository}: GitHub's settings are what .github/settings says (nothing to change)"]
        verb = "changed" if self.applied else "would change (--check: nothing written)"
        return [f"{self.repository}: {verb}:", *(f"  {change}" for change in self.changes)]


def github_apply(api: GitHubApi, settings: Settings, repository: str, *, check: bool) -> GitHubApplyResult:
    if not REPOSITORY.match(repository):
        raise UsageError(f"repository {repository!r} is not OWNER/NAME", "pass --repo OWNER/NAME")
    repo = f"/repos/{repository}"
    ids = _reviewer_ids(api, repository.split("/")[0], settings.environments)
    changes = [
        *_ruleset_changes(api, repo, settings.rulesets),
        *(c for env in settings.environments for c in _environment_changes(api, repo, env, ids)),
        *_oidc_changes(api, repo, settings.oidc_sub),
    ]
    if not check:
        _apply(api, changes)
    return GitHubApplyResult(repository, tuple(changes), applied=not check and bool(changes))


def _apply(api: GitHubApi, changes: Sequence[SettingsChange]) -> None:
    for done, change in enumerate(changes):
        try:
            api.request(change.method, change.path, change.body)
        except DeployctlError as exc:
            before = "; ".join(str(c) for c in changes[:done]) or "nothing"
            error = DeployctlError(
                f"{change}: {exc.message} (applied before it: {before})",
                f"{exc.hint + '; ' if exc.hint else ''}re-run: what is already applied is not written again",
            )
            error.exit_code = exc.exit_code
            raise error from None


def _reviewer_ids(api: GitHubApi, owner: str, environments: Sequence[GitHubEnvironment]) -> dict[Reviewer, int]:
    ids: dict[Reviewer, int] = {}
    for env in environments:
        for reviewer in env.reviewers:
            if reviewer in ids:
                continue
            name = quote(reviewer.name, safe="")
            path = f"/orgs/{quote(owner)}/teams/{name}" if reviewer.type == "Team" else f"/users/{name}"
            found = api.get(path, missing_ok=True)
            if not isinstance(found, Mapping) or not isinstance(found.get("id"), int):
                raise UsageError(
                    f"environments/{env.name}.json: reviewer {reviewer.type} {reviewer.name!r} is not on GitHub",
                    f"create the team in {owner} (or fix the slug/login), and give it access to the repository",
                )
            ids[reviewer] = found["id"]
    return ids


def _ruleset_changes(api: GitHubApi, repo: str, rulesets: Sequence[Mapping[str, Any]]) -> list[SettingsChange]:
    existing = api.get(f"{repo}/rulesets?includes_parents=false&per_page=100") or []
    by_name = {str(r.get("name")): r for r in existing if r.get("source_type", "Repository") == "Repository"}
    changes = []
    for desired in rulesets:
        name = str(desired["name"])
        summary = by_name.get(name)
        if summary is None:
            changes.append(SettingsChange("ruleset", repr(name), "create", "", "POST", f"{repo}/rulesets", desired))
            continue
        path = f"{repo}/rulesets/{int(summary['id'])}"
        differ = differences(api.get(path), desired)
        if differ:
            changes.append(SettingsChange("ruleset", repr(name), "update", ", ".join(differ), "PUT", path, desired))
    return changes


def _environment_changes(
    api: GitHubApi, repo: str, env: GitHubEnvironment, ids: Mapping[Reviewer, int]
) -> list[SettingsChange]:
    path = f"{repo}/environments/{quote(env.name, safe='')}"
    desired = env.put_body(ids)
    actual = api.get(path, missing_ok=True)
    changes = []
    if actual is None:
        changes.append(SettingsChange("environment", env.name, "create", "", "PUT", path, desired))
        present: list[Mapping[str, Any]] = []
    else:
        differ = differences(environment_as_put(actual), desired)
        if differ:
            changes.append(SettingsChange("environment", env.name, "update", ", ".join(differ), "PUT", path, desired))
        listed = api.get(f"{path}/deployment-branch-policies?per_page=100") or {}
        present = list(listed.get("branch_policies") or [])
    have = {(str(p.get("name")), str(p.get("type", "branch"))): p for p in present}
    policies, what = f"{path}/deployment-branch-policies", "deployment branch policy"
    for name, kind in sorted(env.policies - set(have)):
        body = {"name": name, "type": kind}
        changes.append(SettingsChange(what, f"{env.name} {kind} {name}", "create", "", "POST", policies, body))
    for (name, kind), policy in sorted(have.items()):
        if (name, kind) not in env.policies:
            where = f"{policies}/{int(policy['id'])}"
            changes.append(
                SettingsChange(what, f"{env.name} {kind} {name}", "delete", "not in the files", "DELETE", where)
            )
    return changes


def _oidc_changes(api: GitHubApi, repo: str, desired: Mapping[str, Any]) -> list[SettingsChange]:
    path = f"{repo}/actions/oidc/customization/sub"
    actual = api.get(path) or {}
    same = actual.get("use_default") == desired["use_default"] and (
        desired["use_default"] or list(actual.get("include_claim_keys") or []) == list(desired["include_claim_keys"])
    )
    if same:
        return []
    detail = "sub: " + ("GitHub's default" if desired["use_default"] else ", ".join(desired["include_claim_keys"]))
    return [SettingsChange("OIDC subject", repo.removeprefix("/repos/"), "update", detail, "PUT", path, desired)]
