"""A saved plan's record (plan.json beside plan.tfplan): what it was made from, and the checks before it is applied."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from deployctl.adapters import git
from deployctl.core.errors import PolicyError, UsageError
from deployctl.runner import Runner
from deployctl.terraform import root_files
from deployctl.terraform.plan_summary import PlanSummary
from deployctl.terraform.workspace import Prepared, commit_of

log = logging.getLogger(__name__)


METADATA_SCHEMA = "deployctl/plan/v1"


@dataclass(frozen=True)
class PlanMetadata:
    """Written beside a saved plan; ``apply`` checks it before applying."""

    env: str
    commit: str | None
    fingerprint: str
    plan_sha256: str
    created_at: str  # UTC, ISO 8601
    counts: Mapping[str, int]
    has_changes: bool
    schema: str = METADATA_SCHEMA
    inputs: Mapping[str, str] = field(default_factory=dict)  # what the fingerprint covers, name -> sha256

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanMetadata:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    @property
    def created(self) -> datetime:
        return datetime.fromisoformat(self.created_at)


def plan_inputs(prepared: Prepared) -> dict[str, str]:
    """What a saved plan depends on, read after init (which writes .terraform.lock.hcl): name -> sha256."""
    files = root_files.config_files(prepared.workspace.root) + ([prepared.var_file] if prepared.var_file else [])
    settings = hashlib.sha256(prepared.settings_json.encode()).hexdigest()
    named = {os.path.relpath(p.resolve(), prepared.base.resolve()): root_files.file_sha256(p) for p in files}
    return {f"[tool.deployctl.environments.{prepared.env_name}]": settings, **named}


def _fingerprint(inputs: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(dict(inputs), sort_keys=True).encode()).hexdigest()


def _changed_inputs(before: Mapping[str, str], now: Mapping[str, str]) -> str:
    """``: tf/main.tf changed, .terraform.lock.hcl added`` (nothing for a plan saved without its inputs)."""
    names = [f"{n} changed" for n in now if n in before and before[n] != now[n]]
    names += [f"{n} added" for n in now if n not in before] + [f"{n} removed" for n in before if n not in now]
    return ": " + ", ".join(names) if before else ""


def load_saved(prepared: Prepared) -> PlanMetadata | None:
    if not (prepared.plan_file.is_file() and prepared.metadata_file.is_file()):
        return None
    try:
        return PlanMetadata.from_dict(json.loads(prepared.metadata_file.read_text()))
    except (ValueError, TypeError) as exc:
        log.warning("ignoring unreadable plan metadata %s: %s", prepared.metadata_file, exc)
        return None


def discard_saved(prepared: Prepared) -> None:
    prepared.plan_file.unlink(missing_ok=True)
    prepared.metadata_file.unlink(missing_ok=True)


def save_metadata(prepared: Prepared, summary: PlanSummary, runner: Runner) -> PlanMetadata:
    """Record beside the plan file what ``apply`` checks before applying it (its inputs as they are now)."""
    inputs = plan_inputs(prepared)
    metadata = PlanMetadata(
        env=prepared.env_name,
        commit=commit_of(runner, prepared.workspace.root),
        fingerprint=_fingerprint(inputs),
        plan_sha256=root_files.file_sha256(prepared.plan_file),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        counts=summary.counts(),
        has_changes=summary.has_changes,
        inputs=inputs,
    )
    prepared.metadata_file.write_text(json.dumps(asdict(metadata), indent=2) + "\n")
    return metadata


def verify_saved(prepared: Prepared, metadata: PlanMetadata, runner: Runner, *, now: datetime | None = None) -> None:
    """Refuse (PolicyError, exit 4) a saved plan that does not match what would be applied; every
    mismatch is reported at once."""
    problems = []
    name = prepared.env_name
    if metadata.env != name:
        problems.append(f"it was made for environment {metadata.env!r}")
    commit = commit_of(runner, prepared.workspace.root)
    if metadata.commit != commit:
        problems.append(f"it was made at commit {_short(metadata.commit)}, the checkout is at {_short(commit)}")
    inputs = plan_inputs(prepared)
    if metadata.fingerprint != _fingerprint(inputs):
        changed = _changed_inputs(metadata.inputs, inputs)
        problems.append(f"the configuration or terraform files changed since it was made{changed}")
    if root_files.file_sha256(prepared.plan_file) != metadata.plan_sha256:
        problems.append("the plan file was replaced after planning")
    max_age = timedelta(minutes=prepared.settings.plan_max_age_minutes)
    age = (now or datetime.now(UTC)) - metadata.created
    if age > max_age:
        problems.append(
            f"it is {int(age.total_seconds() // 60)} minutes old "
            f"(plan_max_age_minutes = {prepared.settings.plan_max_age_minutes})"
        )
    off_main = _off_main(prepared, metadata.commit, runner) if prepared.protected else []
    problems.extend(off_main)
    if problems:
        raise PolicyError(
            f"refusing the saved plan for {name!r}: " + "; ".join(problems),
            (f"merge the change to {prepared.main_branch} first; then " if off_main else "")
            + f"re-plan with `deployctl plan {name}`, review it, then `deployctl apply {name}`",
            details={"problems": problems},
        )


def _off_main(prepared: Prepared, commit: str | None, runner: Runner) -> list[str]:
    """Why a plan may not apply to a protected environment because of where its commit is: only a commit
    on the main branch (reviewed and merged) may change it, never one of a pull request or a side branch."""
    branch = prepared.main_branch
    if commit is None:
        return [f"it was not made from a git commit (only plans made from {branch} apply here)"]
    repo = prepared.workspace.root
    try:
        ref = git.main_ref(runner, repo, branch)
    except UsageError as exc:
        return [f"cannot check that {commit[:12]} is on {branch}: {exc.message} (git fetch origin {branch})"]
    if git.contains(runner, repo, commit) and git.is_ancestor(runner, repo, commit, ref):
        return []
    return [f"it was made at commit {commit[:12]}, which is not on {ref} (only plans made from {branch} apply here)"]


def _short(commit: str | None) -> str:
    return commit[:12] if commit else "(no git commit)"
