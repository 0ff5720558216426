"""An environment's infrastructure through terraform: a prepared workspace, init only when its inputs
changed, ``plan -out`` + ``show -json``, and the saved plans ``apply`` accepts.

The plan file goes to ``<state_dir>/plans/ENV/plan.tfplan``; beside it, ``plan.json`` records the
commit, a fingerprint of the environment's configuration and terraform files, the plan file's
hash and when it was made, so ``apply`` can refuse a plan that no longer matches. Used by the
``plan``, ``apply``, ``destroy`` and ``lock break --state`` use cases.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from deployctl.adapters import git
from deployctl.config import LoadedConfig, Terraform
from deployctl.console import Reporter
from deployctl.core.errors import DeployctlError, PolicyError, UsageError
from deployctl.runner import Runner
from deployctl.terraform import adapter as terraform
from deployctl.terraform.adapter import PlanSummary, Workspace

log = logging.getLogger(__name__)

METADATA_SCHEMA = "deployctl/plan/v1"
PLAN_FILE = "plan.tfplan"
PULL_REQUEST_PLAN_FILE = "pull-request.tfplan"  # never applied: removed once summarized
# A pull request plans a protected environment against this key prefix, where nothing is ever written: no state.
NO_STATE_PREFIX = "pull-requests"
METADATA_FILE = "plan.json"
DESTROY_PLAN_FILE = "destroy.tfplan"


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


@dataclass(frozen=True)
class Prepared:
    """Everything needed to run terraform for one environment, computed before anything runs."""

    env_name: str
    reporter: Reporter
    workspace: Workspace
    settings: Terraform
    init_argv: list[str]
    init_stamp: str
    variables: dict[str, str | int | bool]
    settings_json: str  # the environment's resolved settings (part of what a plan depends on)
    base: Path  # the configuration's directory: input files are named relative to it
    plan_dir: Path
    var_file: Path | None = None
    protected: bool = False  # only plans made from a commit on ``main_branch`` apply
    main_branch: str = "main"
    # A pull request's plan: -lock=false (its role writes nothing), never saved for apply; of a protected
    # environment, made without its state (``stateless``: -refresh=false against the empty NO_STATE_PREFIX key).
    pull_request: bool = False

    @property
    def stateless(self) -> bool:
        return self.pull_request and self.protected

    @property
    def plan_file(self) -> Path:
        return self.plan_dir / (PULL_REQUEST_PLAN_FILE if self.pull_request else PLAN_FILE)

    @property
    def metadata_file(self) -> Path:
        return self.plan_dir / METADATA_FILE


def require_terraform(config: LoadedConfig, name: str) -> Terraform:
    settings = config.settings.environments[name].terraform
    if settings is None:
        with_tf = [n for n, e in config.settings.environments.items() if e.terraform is not None]
        raise UsageError(
            f"environment {name!r} has no terraform root configured",
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


def prepare(
    config: LoadedConfig,
    name: str,
    runner: Runner,
    reporter: Reporter,
    credentials: Mapping[str, str],
    *,
    base_env: Mapping[str, str] | None = None,
    pull_request: bool = False,
) -> Prepared:
    """Validate the environment's terraform settings and build the workspace (runs nothing);
    ``credentials`` are the AWS variables terraform runs with (the environment's one session); ``pull_request``:
    a pull request's plan (``Prepared.pull_request``), in a data dir of its own."""
    settings = require_terraform(config, name)
    env = config.settings.environments[name]
    root = config.resolve(settings.root)
    key = f"tool.deployctl.environments.{name}.terraform"
    if not root.is_dir():
        raise UsageError(
            f"terraform root {root} does not exist ({key}.root)",
            f"fix {key}.root in {config.path.name}, or restore the directory",
        )
    var_file = config.resolve(settings.var_file) if settings.var_file is not None else None
    if var_file is not None and not var_file.is_file():
        raise UsageError(
            f"terraform variables file {var_file} does not exist ({key}.var_file)",
            f"fix {key}.var_file in {config.path.name}, or create the file",
        )
    if not any(root.glob("*.tf")):
        raise UsageError(
            f"terraform root {root} has no *.tf files ({key}.root)", f"point {key}.root at a terraform root module"
        )
    variables = _variables(name, env.aws.region, env.aws.endpoint_url, settings, root, reporter)
    backend = settings.backend
    stateless = pull_request and env.protected
    init_argv = terraform.init_args(
        bucket=backend.bucket,
        key=f"{NO_STATE_PREFIX}/{backend.key}" if stateless else backend.key,
        region=backend.region,
        use_lockfile=backend.use_lockfile,
        endpoint_url=env.aws.endpoint_url,
    )
    files = terraform.config_files(root) + ([var_file] if var_file is not None else [])
    # init depends on the backend settings and the modules/providers, not on tfvars
    init_files = [p for p in files if not p.name.endswith((".tfvars", ".tfvars.json"))]
    init_stamp = terraform.fingerprint(init_files, base=config.root, extra=init_argv)
    data_dir = config.state_dir / "terraform" / (f"{name}-pull-request" if pull_request else name)
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
    child_env.update(credentials)
    workspace = Workspace(
        root=root,
        data_dir=data_dir.resolve(),
        runner=runner,
        env=child_env,
        name=name,
        var_file=var_file.resolve() if var_file is not None else None,
        variables=variables,
    )
    return Prepared(
        env_name=name,
        reporter=reporter,
        workspace=workspace,
        settings=settings,
        init_argv=init_argv,
        init_stamp=init_stamp,
        variables=variables,
        settings_json=env.model_dump_json(),
        base=config.root,
        plan_dir=(config.state_dir / "plans" / name).resolve(),
        var_file=var_file,
        protected=env.protected,
        main_branch=config.settings.main_branch,
        pull_request=pull_request,
    )


def _variables(
    name: str, region: str, endpoint: str | None, settings: Terraform, root: Path, reporter: Reporter
) -> dict[str, str | int | bool]:
    """What deployctl passes as ``-var`` (after the var file, so these win): the environment's name and
    region when the root declares them (the region is configured once, in ``aws.region``), the emulator
    endpoint in the sandbox, then ``terraform.vars``."""
    declared = terraform.declared_variables(root)
    undeclared = sorted(set(settings.vars) - declared)
    if undeclared:
        raise UsageError(
            f"environments.{name}.terraform.vars sets variables the root {root} does not declare: "
            + ", ".join(undeclared),
            "remove them from the configuration or declare them in the root's variables.tf",
        )
    values: dict[str, str | int | bool] = {}
    if "environment" in declared:
        values["environment"] = name
    if "region" in declared:
        values["region"] = region
    if endpoint is not None:
        if {"aws_endpoint_url", "aws_skip_checks"} <= declared:
            values["aws_endpoint_url"] = endpoint
            values["aws_skip_checks"] = True
        else:
            reporter.warn(
                f"{root} does not declare aws_endpoint_url/aws_skip_checks: the AWS provider will not use {endpoint}"
            )
    values.update(settings.vars)
    return values


def commit_of(runner: Runner, directory: Path) -> str | None:
    """The commit checked out where ``directory`` is; None outside a git repository."""
    try:
        return git.head(runner, directory)
    except DeployctlError as exc:
        log.debug("no git commit: %s", exc.message)
        return None


def ensure_init(prepared: Prepared) -> None:
    ws = prepared.workspace
    name = prepared.env_name
    if not terraform.init_needed(ws, prepared.init_stamp):
        prepared.reporter.progress(f"{name}: terraform init: up to date")
        return
    with prepared.reporter.phase(f"{name}: terraform init"):
        terraform.init(ws, prepared.init_argv, stamp=prepared.init_stamp)
    # init may have written .terraform.lock.hcl, itself an input of init: stamp what is there now
    files = [p for p in terraform.config_files(ws.root) if not p.name.endswith((".tfvars", ".tfvars.json"))]
    stamp = terraform.fingerprint(files, base=prepared.base, extra=prepared.init_argv)
    (ws.data_dir / terraform.INIT_STAMP).write_text(stamp + "\n")


def plan_inputs(prepared: Prepared) -> dict[str, str]:
    """What a saved plan depends on, read after init (which writes .terraform.lock.hcl): name -> sha256."""
    files = terraform.config_files(prepared.workspace.root) + ([prepared.var_file] if prepared.var_file else [])
    settings = hashlib.sha256(prepared.settings_json.encode()).hexdigest()
    named = {os.path.relpath(p.resolve(), prepared.base.resolve()): terraform.file_sha256(p) for p in files}
    return {f"[tool.deployctl.environments.{prepared.env_name}]": settings, **named}


def _fingerprint(inputs: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(dict(inputs), sort_keys=True).encode()).hexdigest()


def _changed_inputs(before: Mapping[str, str], now: Mapping[str, str]) -> str:
    """``: tf/main.tf changed, .terraform.lock.hcl added`` (nothing for a plan saved without its inputs)."""
    names = [f"{n} changed" for n in now if n in before and before[n] != now[n]]
    names += [f"{n} added" for n in now if n not in before] + [f"{n} removed" for n in before if n not in now]
    return ": " + ", ".join(names) if before else ""


def import_resource(prepared: Prepared, address: str, import_id: str, *, lock_timeout: int | None = None) -> None:
    """``terraform import ADDRESS ID`` into the environment's state (init when needed): what a resource an
    interrupted apply created, but never recorded, needs before the next apply (the apply error lists them).
    The caller holds the environment lock."""
    ensure_init(prepared)
    with prepared.reporter.phase(f"{prepared.env_name}: terraform import {address} {import_id}"):
        terraform.import_resource(prepared.workspace, address, import_id, lock_timeout=lock_timeout)


def make_plan(prepared: Prepared, *, out: Path, destroy: bool = False, lock_timeout: int | None = None) -> PlanSummary:
    """init (when needed), ``plan -out``, ``show -json``; returns the summary read from the JSON."""
    ensure_init(prepared)
    name = prepared.env_name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    argv = terraform.plan_args(
        out=out,
        variables=prepared.variables,
        var_file=prepared.var_file,
        destroy=destroy,
        lock_timeout=lock_timeout,
        lock=not prepared.pull_request,
        refresh=not prepared.stateless,
    )
    ws = prepared.workspace
    with prepared.reporter.phase(f"{name}: terraform plan{' -destroy' if destroy else ''}"):
        # exit 0 of -detailed-exitcode means an empty diff: skip `show -json` (~8 s: it loads the
        # provider schemas) when there is nothing to read
        changed = terraform.plan(ws, argv)
        summary = terraform.summarize(terraform.show(ws, out)) if changed else PlanSummary()
    for change in summary.destructive:
        verb = "DESTROYED" if change.kind == "destroy" else "REPLACED (destroyed and re-created)"
        prepared.reporter.warn(f"{name}: {change.address} will be {verb}")
    return summary


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
        plan_sha256=terraform.file_sha256(prepared.plan_file),
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
    if terraform.file_sha256(prepared.plan_file) != metadata.plan_sha256:
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
