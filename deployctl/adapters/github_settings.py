"""GitHub's side as code: the checked-in settings (``.github/settings``) and how they differ from what GitHub has.

Pure: reading and validating the files, and comparing each object with the one GitHub returns. The files are in
the REST API's shapes, so each is the body of its PUT: ``rulesets/*.json`` (``/repos/O/R/rulesets``),
``environments/NAME.json`` (``/repos/O/R/environments/NAME``) and ``oidc-sub.json``
(``/repos/O/R/actions/oidc/customization/sub``). Two additions: an environment names its reviewers by team slug or
user login (the API wants ids, which differ per organization), and lists its ``deployment_branch_policies`` (an
endpoint of their own). A top-level ``"$comment"`` says why; it is never sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployctl.core.errors import ConfigError

COMMENT = "$comment"
ENVIRONMENT_KEYS = frozenset(
    {"wait_timer", "prevent_self_review", "can_admins_bypass", "reviewers", "deployment_branch_policy"}
)
# What GitHub assumes for a key an environment's PUT leaves out (the comparison's defaults, too).
ENVIRONMENT_DEFAULTS: Mapping[str, Any] = {
    "wait_timer": 0,
    "prevent_self_review": False,
    "can_admins_bypass": True,
    "reviewers": [],
    "deployment_branch_policy": None,
}
REVIEWER_NAME = {"Team": "slug", "User": "login"}
RULESET_REQUIRED = ("name", "target", "enforcement", "rules")


@dataclass(frozen=True)
class Reviewer:
    type: str  # Team or User
    name: str  # the team's slug or the user's login


@dataclass(frozen=True)
class GitHubEnvironment:
    name: str
    body: Mapping[str, Any]  # the PUT body, reviewers left out (they need ids)
    reviewers: tuple[Reviewer, ...]
    policies: frozenset[tuple[str, str]]  # deployment branch policies: (name pattern, "branch" or "tag")

    def put_body(self, ids: Mapping[Reviewer, int]) -> dict[str, Any]:
        reviewers = [{"type": r.type, "id": ids[r]} for r in self.reviewers]
        return {**ENVIRONMENT_DEFAULTS, **self.body, "reviewers": reviewers}


@dataclass(frozen=True)
class Settings:
    environments: tuple[GitHubEnvironment, ...]
    rulesets: tuple[Mapping[str, Any], ...]
    oidc_sub: Mapping[str, Any]


def load(directory: Path) -> Settings:
    """The settings in ``directory``, every problem reported at once (exit 2)."""
    problems: list[str] = []
    if not directory.is_dir():
        raise ConfigError([f"{directory}: no GitHub settings here"], "pass --settings DIR (default .github/settings)")
    environments = tuple(
        env for path in sorted((directory / "environments").glob("*.json")) if (env := _environment(path, problems))
    )
    rulesets = tuple(r for path in sorted((directory / "rulesets").glob("*.json")) if (r := _ruleset(path, problems)))
    names = [str(r["name"]) for r in rulesets]
    twice = sorted({n for n in names if names.count(n) > 1})
    problems += [f"{directory / 'rulesets'}: two rulesets are named {n!r}" for n in twice]
    oidc = _oidc(directory / "oidc-sub.json", problems)
    if problems:
        raise ConfigError(problems, "fix the files above (the GitHub REST API's shapes; README: GitHub settings)")
    return Settings(environments, rulesets, oidc)


def _read(path: Path, problems: list[str]) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        problems.append(f"{path}: cannot read it ({exc.strerror})")
        return None
    except json.JSONDecodeError as exc:
        problems.append(f"{path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}")
        return None
    if not isinstance(document, dict):
        problems.append(f"{path}: must be a JSON object")
        return None
    document.pop(COMMENT, None)
    return document


def _environment(path: Path, problems: list[str]) -> GitHubEnvironment | None:
    document = _read(path, problems)
    if document is None:
        return None
    found = len(problems)
    raw_policies = document.pop("deployment_branch_policies", [])
    raw_reviewers = document.pop("reviewers", [])
    known = ", ".join(sorted(ENVIRONMENT_KEYS))
    problems += [f"{path}: unknown key {key!r} (known: {known})" for key in document if key not in ENVIRONMENT_KEYS]
    reviewers: list[Reviewer] = []
    for i, item in enumerate(raw_reviewers if isinstance(raw_reviewers, list) else [None]):
        kind = item.get("type") if isinstance(item, dict) else None
        name = item.get(REVIEWER_NAME.get(str(kind), "?")) if isinstance(item, dict) else None
        if kind not in REVIEWER_NAME or not isinstance(name, str) or not name:
            form = '{"type": "Team", "slug": ...} or {"type": "User", "login": ...}'
            problems.append(f"{path}: reviewers[{i}]: {form}")
        else:
            reviewers.append(Reviewer(str(kind), name))
    policies: set[tuple[str, str]] = set()
    for i, item in enumerate(raw_policies if isinstance(raw_policies, list) else [None]):
        named = isinstance(item, dict) and isinstance(item.get("name"), str)
        if not named or item.get("type") not in ("branch", "tag"):
            problems.append(f'{path}: deployment_branch_policies[{i}]: {{"name": PATTERN, "type": "branch" or "tag"}}')
        else:
            policies.add((item["name"], item["type"]))
    custom = (document.get("deployment_branch_policy") or {}).get("custom_branch_policies") is True
    if policies and not custom:
        needs = "deployment_branch_policy.custom_branch_policies = true"
        problems.append(f"{path}: deployment_branch_policies need {needs}")
    if len(problems) > found:
        return None
    return GitHubEnvironment(path.stem, document, tuple(reviewers), frozenset(policies))


def _ruleset(path: Path, problems: list[str]) -> Mapping[str, Any] | None:
    document = _read(path, problems)
    if document is None:
        return None
    missing = [key for key in RULESET_REQUIRED if key not in document]
    if missing:
        problems.append(f"{path}: a ruleset needs {', '.join(missing)}")
        return None
    rules = document["rules"]
    if not isinstance(rules, list) or not all(isinstance(r, dict) and "type" in r for r in rules):
        problems.append(f'{path}: rules: a list of {{"type": ...}}')
        return None
    return document


def _oidc(path: Path, problems: list[str]) -> Mapping[str, Any]:
    document = _read(path, problems) or {}
    keys = document.get("include_claim_keys")
    if not isinstance(document.get("use_default"), bool) or not (
        isinstance(keys, list) and all(isinstance(k, str) for k in keys)
    ):
        problems.append(f'{path}: {{"use_default": false, "include_claim_keys": ["repo", "context", ...]}}')
    return document


# --------------------------------------------------------------------------- comparing with what GitHub has


def environment_as_put(actual: Mapping[str, Any]) -> dict[str, Any]:
    """An environment as GitHub returns it (``GET``: protection rules) in the shape of its ``PUT`` body."""
    rules = {str(rule.get("type")): rule for rule in actual.get("protection_rules") or []}
    reviewers = (rules.get("required_reviewers") or {}).get("reviewers") or []
    return {
        "wait_timer": (rules.get("wait_timer") or {}).get("wait_timer", 0),
        "prevent_self_review": bool((rules.get("required_reviewers") or {}).get("prevent_self_review", False)),
        "can_admins_bypass": actual.get("can_admins_bypass", True),
        "reviewers": [{"type": r.get("type"), "id": (r.get("reviewer") or {}).get("id")} for r in reviewers],
        "deployment_branch_policy": actual.get("deployment_branch_policy"),
    }


def differences(actual: Mapping[str, Any], desired: Mapping[str, Any]) -> list[str]:
    """The top-level keys of ``desired`` whose value ``actual`` does not have (see ``covers``)."""
    return [key for key, value in desired.items() if key not in actual or not covers(actual[key], value)]


def covers(actual: Any, desired: Any) -> bool:
    """Whether ``actual`` (what GitHub returns) has everything ``desired`` says: GitHub adds ids, links and the
    defaults of parameters a file leaves out, and returns lists (rules, bypass actors, patterns) in an order of its
    own. So a mapping needs only the desired keys, and a list the same items in any order."""
    if isinstance(desired, Mapping):
        return isinstance(actual, Mapping) and all(k in actual and covers(actual[k], v) for k, v in desired.items())
    if isinstance(desired, list):
        return isinstance(actual, list) and len(actual) == len(desired) and _matched(list(actual), desired)
    return bool(actual == desired) and type(actual) is type(desired)


def _matched(actual: list[Any], desired: Sequence[Any]) -> bool:
    for item in desired:
        match = next((i for i, candidate in enumerate(actual) if covers(candidate, item)), None)
        if match is None:
            return False
        actual.pop(match)
    return True
