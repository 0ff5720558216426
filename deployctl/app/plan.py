"""``deployctl plan ENV``: init, ``plan -out``, ``show -json``, a summary, and plan metadata for apply.

The plan file goes to ``<state_dir>/plans/ENV/plan.tfplan``; beside it, ``plan.json`` records the
commit, a fingerprint of the environment's configuration and terraform files, the plan file's
hash and when it was made, so ``apply`` can refuse a plan that no longer matches.

The helpers here (``prepare``, ``ensure_init``, ``make_plan``, saved-plan I/O) are shared by
``apply`` and ``destroy``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from deployctl import terraform
from deployctl.app.base import Target
from deployctl.app.diff import DiffResult, diff
from deployctl.config import Terraform
from deployctl.errors import DeployctlError, OperationError, PolicyError, UsageError
from deployctl.terraform import PlanSummary, ResourceChange, Workspace

log = logging.getLogger(__name__)

METADATA_SCHEMA = "deployctl/plan/v1"
PLAN_FILE = "plan.tfplan"
METADATA_FILE = "plan.json"
DESTROY_PLAN_FILE = "destroy.tfplan"


# --------------------------------------------------------------------------- results


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

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanMetadata:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    @property
    def created(self) -> datetime:
        return datetime.fromisoformat(self.created_at)


@dataclass(frozen=True)
class TerraformPlan:
    """The terraform part of a plan."""

    root: str
    plan_file: str | None
    summary: PlanSummary
    metadata: PlanMetadata | None

    def data(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "plan_file": self.plan_file,
            "changes": self.summary.has_changes,
            "summary": self.summary.counts(),
            "resource_changes": [c.to_dict() for c in self.summary.changes],
            "output_changes": list(self.summary.output_changes),
            "commit": self.metadata.commit if self.metadata else None,
            "created_at": self.metadata.created_at if self.metadata else None,
        }


@dataclass(frozen=True)
class PlanResult:
    """What ``plan`` found: the terraform plan, and for deployable environments the helm diff
    (rendered chart vs live cluster). ``helm_error`` says why the diff is missing (e.g. no cluster yet)."""

    env: str
    terraform: TerraformPlan | None
    helm: DiffResult | None = None
    helm_error: str | None = None
    command: str = "plan"

    @property
    def has_changes(self) -> bool:
        terraform = self.terraform is not None and self.terraform.summary.has_changes
        return terraform or (self.helm is not None and self.helm.changed)

    def data(self) -> Mapping[str, Any]:
        return {
            "env": self.env,
            "changes": self.has_changes,
            "terraform": self.terraform.data() if self.terraform else None,
            "helm": self.helm.data() if self.helm else None,
            "helm_error": self.helm_error,
        }

    def text(self) -> Sequence[str]:
        if self.terraform is None:
            lines = [f"{self.env}: no terraform root configured"]
        else:
            lines = [f"{self.env}: terraform: {self.terraform.summary.headline()}"]
            lines += change_lines(self.terraform.summary)
            if self.terraform.summary.has_changes and self.terraform.plan_file:
                lines.append(f"plan saved to {self.terraform.plan_file}; apply it with: deployctl apply {self.env}")
        if self.helm is not None:
            lines.append(f"{self.env}: helm diff (chart vs live cluster):")
            lines += [f"  {line}" for line in self.helm.text()]
        elif self.helm_error is not None:
            lines.append(f"{self.env}: helm diff unavailable: {self.helm_error}")
        return lines


_SYMBOL = {"add": "+", "change": "~", "destroy": "-", "replace": "-/+"}


def change_lines(summary: PlanSummary) -> list[str]:
    """One line per resource change; destroys and replacements are shouted (upper case, marked)."""
    lines = [f"  {_SYMBOL[c.kind]:>3} {c.address}{_loud(c)}" for c in summary.changes]
    destructive = summary.destructive
    if destructive:
        lines.append(
            f"!! {len(destructive)} resource(s) will be DESTROYED or REPLACED: "
            + ", ".join(c.address for c in destructive)
        )
    return lines


def _loud(change: ResourceChange) -> str:
    if change.kind == "destroy":
        return "   <-- DESTROY"
    if change.kind == "replace":
        return "   <-- REPLACE (destroy and re-create)"
    return ""


# --------------------------------------------------------------------------- preparation


@dataclass(frozen=True)
class Prepared:
    """Everything needed to run terraform for one environment, computed before anything runs."""

    workspace: Workspace
    settings: Terraform
    init_argv: list[str]
    init_stamp: str
    variables: dict[str, str | int | bool]
    fingerprint: str
    plan_dir: Path

    @property
    def plan_file(self) -> Path:
        return self.plan_dir / PLAN_FILE

    @property
    def metadata_file(self) -> Path:
        return self.plan_dir / METADATA_FILE


def require_terraform(target: Target) -> Terraform:
    settings = target.env.terraform
    if settings is None:
        with_tf = [n for n, e in target.config.settings.environments.items() if e.terraform is not None]
        raise UsageError(
            f"environment {target.name!r} has no terraform root configured",
            f"environments with terraform: {', '.join(with_tf) or '(none)'}",
        )
    return settings


def plugin_cache_dir() -> Path:
    """One provider cache for every root and environment (TF_PLUGIN_CACHE_DIR, else the user cache)."""
    chosen = os.environ.get("TF_PLUGIN_CACHE_DIR")
    if chosen:
        return Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "deployctl" / "terraform-plugins"


def prepare(target: Target, *, base_env: Mapping[str, str] | None = None) -> Prepared:
    """Validate the environment's terraform settings and build the workspace (runs nothing but
    role assumption when a role is configured)."""
    settings = require_terraform(target)
    root = target.config.resolve(settings.root)
    key = f"tool.deployctl.environments.{target.name}.terraform.root"
    if not root.is_dir():
        raise UsageError(
            f"terraform root {root} does not exist ({key})",
            f"fix {key} in {target.config.path.name}, or restore the directory",
        )
    if not any(root.glob("*.tf")):
        raise UsageError(f"terraform root {root} has no *.tf files ({key})", f"point {key} at a terraform root module")
    variables = _variables(target, settings, root)
    backend = settings.backend
    init_argv = terraform.init_args(
        bucket=backend.bucket,
        key=backend.key,
        region=backend.region,
        use_lockfile=backend.use_lockfile,
        endpoint_url=target.env.aws.endpoint_url,
    )
    files = terraform.config_files(root)
    base = target.config.root
    env_config = target.env.model_dump_json()
    fingerprint = terraform.fingerprint(files, base=base, extra=[target.name, env_config])
    # init depends on the backend settings and the modules/providers, not on tfvars
    init_files = [p for p in files if not p.name.endswith((".tfvars", ".tfvars.json"))]
    init_stamp = terraform.fingerprint(init_files, base=base, extra=init_argv)
    data_dir = target.config.state_dir / "terraform" / target.name
    cache = plugin_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    child_env = dict(base_env if base_env is not None else os.environ)
    child_env.update(
        {
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "TF_DATA_DIR": str(data_dir.resolve()),
            "TF_PLUGIN_CACHE_DIR": str(cache.resolve()),
        }
    )
    child_env.update(_credentials(target))
    workspace = Workspace(root=root, data_dir=data_dir.resolve(), runner=target.runner, env=child_env)
    return Prepared(
        workspace=workspace,
        settings=settings,
        init_argv=init_argv,
        init_stamp=init_stamp,
        variables=variables,
        fingerprint=fingerprint,
        plan_dir=(target.config.state_dir / "plans" / target.name).resolve(),
    )


def _variables(target: Target, settings: Terraform, root: Path) -> dict[str, str | int | bool]:
    declared = terraform.declared_variables(root)
    undeclared = sorted(set(settings.vars) - declared)
    if undeclared:
        raise UsageError(
            f"environments.{target.name}.terraform.vars sets variables the root {root} does not declare: "
            + ", ".join(undeclared),
            "remove them from the configuration or declare them in the root's variables.tf",
        )
    values: dict[str, str | int | bool] = {}
    if "environment" in declared:
        values["environment"] = target.name
    endpoint = target.env.aws.endpoint_url
    if endpoint is not None:
        if {"aws_endpoint_url", "aws_skip_checks"} <= declared:
            values["aws_endpoint_url"] = endpoint
            values["aws_skip_checks"] = True
        else:
            target.reporter.warn(
                f"{root} does not declare aws_endpoint_url/aws_skip_checks: the AWS provider will not use {endpoint}"
            )
    values.update(settings.vars)
    return values


def _credentials(target: Target) -> dict[str, str]:
    """AWS settings for the child: the profile, or the assumed role's temporary credentials
    (registered with the redactor, so they never appear in output)."""
    aws = target.env.aws
    values: dict[str, str] = {}
    if aws.profile:
        values["AWS_PROFILE"] = aws.profile
    if aws.role_arn is None:
        return values
    from deployctl.aws import session

    credentials = session(target.env).get_credentials()
    if credentials is None:
        raise OperationError(f"no AWS credentials after assuming {aws.role_arn}", "check `aws sts get-caller-identity`")
    frozen = credentials.get_frozen_credentials()
    for secret in (frozen.access_key, frozen.secret_key, frozen.token):
        target.runner.redactor.add(secret)
    values.update({"AWS_ACCESS_KEY_ID": frozen.access_key or "", "AWS_SECRET_ACCESS_KEY": frozen.secret_key or ""})
    if frozen.token:
        values["AWS_SESSION_TOKEN"] = frozen.token
    values["AWS_PROFILE"] = ""  # the assumed role's keys win over any profile
    return values


def git_commit(target: Target, directory: Path) -> str | None:
    """The commit of the repository holding ``directory``; None outside a git repository."""
    try:
        result = target.runner.run(["git", "rev-parse", "HEAD"], cwd=directory, timeout=30, ok_codes=(0, 128))
    except DeployctlError as exc:
        log.debug("no git commit: %s", exc.message)
        return None
    if result.exit_code != 0:
        return None
    return result.stdout.strip() or None


# --------------------------------------------------------------------------- steps


def ensure_init(target: Target, prepared: Prepared) -> None:
    ws = prepared.workspace
    if not terraform.init_needed(ws, prepared.init_stamp):
        target.reporter.progress(f"{target.name}: terraform init: up to date")
        return
    with target.reporter.phase(f"{target.name}: terraform init"):
        terraform.init(ws, prepared.init_argv, stamp=prepared.init_stamp)


def make_plan(
    target: Target, prepared: Prepared, *, out: Path, destroy: bool = False, lock_timeout: int | None = None
) -> PlanSummary:
    """init (when needed), ``plan -out``, ``show -json``; returns the summary read from the JSON."""
    ensure_init(target, prepared)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    argv = terraform.plan_args(out=out, variables=prepared.variables, destroy=destroy, lock_timeout=lock_timeout)
    ws = prepared.workspace
    with target.reporter.phase(f"{target.name}: terraform plan{' -destroy' if destroy else ''}"):
        # exit 0 of -detailed-exitcode means an empty diff: skip `show -json` (~8 s: it loads the
        # provider schemas) when there is nothing to read
        changed = terraform.plan(ws, argv)
        summary = terraform.summarize(terraform.show(ws, out)) if changed else PlanSummary()
    for change in summary.destructive:
        verb = "DESTROYED" if change.kind == "destroy" else "REPLACED (destroyed and re-created)"
        target.reporter.warn(f"{target.name}: {change.address} will be {verb}")
    return summary


def plan(target: Target) -> PlanResult:
    """Plan ``target`` (terraform, saved with its metadata for ``apply``) and, for deployable
    environments, diff the chart against the live cluster at the same time (the two overlap:
    terraform is a child process, the diff mostly waits on the API server)."""
    if not target.env.deployable:
        return _plan_terraform(target)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="helm-diff") as pool:
        pending = pool.submit(diff, target)
        result = _plan_terraform(target)
        try:
            return replace(result, helm=pending.result())
        except Exception as exc:  # noqa: BLE001 (the diff is advisory: it must never fail the terraform plan)
            text = exc.message if isinstance(exc, DeployctlError) else f"{type(exc).__name__}: {exc}"
            first = text.splitlines()[0]
            target.reporter.warn(f"helm diff skipped: {first}")
            return replace(result, helm_error=first)


def _plan_terraform(target: Target) -> PlanResult:
    if target.env.terraform is None:
        return PlanResult(env=target.name, terraform=None)
    prepared = prepare(target)
    discard_saved(prepared)  # a failed plan must never leave an older plan behind for apply
    summary = make_plan(target, prepared, out=prepared.plan_file)
    metadata = PlanMetadata(
        env=target.name,
        commit=git_commit(target, prepared.workspace.root),
        fingerprint=prepared.fingerprint,
        plan_sha256=terraform.file_sha256(prepared.plan_file),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        counts=summary.counts(),
        has_changes=summary.has_changes,
    )
    prepared.metadata_file.write_text(json.dumps(asdict(metadata), indent=2) + "\n")
    return PlanResult(
        env=target.name,
        terraform=TerraformPlan(
            root=str(prepared.workspace.root),
            plan_file=_shown(target, prepared.plan_file),
            summary=summary,
            metadata=metadata,
        ),
    )


def _shown(target: Target, path: Path) -> str:
    try:
        return str(path.relative_to(target.config.root.resolve()))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- saved plans


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


def verify_saved(target: Target, prepared: Prepared, metadata: PlanMetadata, *, now: datetime | None = None) -> None:
    """Refuse (PolicyError, exit 4) a saved plan that does not match what would be applied; every
    mismatch is reported at once."""
    problems = []
    if metadata.env != target.name:
        problems.append(f"it was made for environment {metadata.env!r}")
    commit = git_commit(target, prepared.workspace.root)
    if metadata.commit != commit:
        problems.append(f"it was made at commit {_short(metadata.commit)}, the checkout is at {_short(commit)}")
    if metadata.fingerprint != prepared.fingerprint:
        problems.append("the configuration or terraform files changed since it was made")
    if terraform.file_sha256(prepared.plan_file) != metadata.plan_sha256:
        problems.append("the plan file was replaced after planning")
    max_age = timedelta(minutes=prepared.settings.plan_max_age_minutes)
    age = (now or datetime.now(UTC)) - metadata.created
    if age > max_age:
        problems.append(
            f"it is {int(age.total_seconds() // 60)} minutes old "
            f"(plan_max_age_minutes = {prepared.settings.plan_max_age_minutes})"
        )
    if problems:
        raise PolicyError(
            f"refusing the saved plan for {target.name!r}: " + "; ".join(problems),
            f"re-plan with `deployctl plan {target.name}`, review it, then `deployctl apply {target.name}`",
            details={"problems": problems},
        )


def _short(commit: str | None) -> str:
    return commit[:12] if commit else "(no git commit)"
