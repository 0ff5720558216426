"""IAM's evaluation of a role's trust policy for a web identity token: what moto's STS does not do.

The conditions GitHub's roles use: StringEquals, StringLike (``*`` any run of characters, ``?`` one; case-sensitive),
and their negations. Within an operator every key must match (AND), a key matches when any of its values does (OR);
a key the token does not carry matches no positive operator. An explicit Deny wins; nothing allowed is a refusal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

ISSUER = "token.actions.githubusercontent.com"
ACTION = "sts:AssumeRoleWithWebIdentity"


def github_token(context: str, workflow: str, ref: str, repo: str = "acme/api") -> dict[str, str]:
    """The claims of a GitHub Actions token under the customized subject (repo, context, job_workflow_ref)."""
    return {
        "aud": "sts.amazonaws.com",
        "sub": f"repo:{repo}:{context}:job_workflow_ref:{repo}/.github/workflows/{workflow}@{ref}",
    }


def allows(policy: Mapping[str, Any], *, claims: Mapping[str, str], federated: str) -> bool:
    """Whether ``policy`` lets a token of ``claims``, issued through the provider ``federated``, assume the role."""
    allowed = False
    for statement in _listed(policy.get("Statement")):
        if ACTION not in _listed(statement.get("Action")):
            continue
        if federated not in _listed((statement.get("Principal") or {}).get("Federated")):
            continue
        if not _conditions_hold(statement.get("Condition") or {}, claims):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def _conditions_hold(conditions: Mapping[str, Mapping[str, Any]], claims: Mapping[str, str]) -> bool:
    for operator, keys in conditions.items():
        negated = operator.startswith("StringNot")
        like = operator.endswith("Like")
        if operator not in ("StringEquals", "StringLike", "StringNotEquals", "StringNotLike"):
            raise ValueError(f"trust condition operator {operator} is not evaluated here")
        for key, values in keys.items():
            claim = claims.get(key.removeprefix(f"{ISSUER}:")) if key.startswith(f"{ISSUER}:") else None
            matched = claim is not None and any(_matches(str(v), claim, like) for v in _listed(values))
            if matched == negated:
                return False
    return True


def _matches(pattern: str, value: str, like: bool) -> bool:
    if not like:
        return pattern == value
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]
