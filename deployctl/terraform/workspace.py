"""An environment's infrastructure through terraform: a prepared workspace, init only when its inputs
changed, ``plan -out`` + ``show -json``, and the saved plans ``apply`` accepts.

The plan file goes to ``<state_dir>/plans/ENV/plan.tfplan``; beside it, ``plan.json`` records the
commit, a fingerprint of the environment's configuration and terraform files, the plan file's
hash and when it was made, so ``apply`` can refuse a plan that no longer matches. Used by the
``plan``, ``apply``, ``destroy`` and ``lock break --state`` use cases.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deployctl.adapters import git
from deployctl.config import LoadedConfig, Terraform
from deployctl.console import Reporter
from deployctl.core.errors import DeployctlError, UsageError
from deployctl.runner import Runner
from deployctl.terraform import adapter as terraform
from deployctl.terraform import args, plan_summary, root_files
from deployctl.terraform.adapter import Workspace
from deployctl.terraform.plan_summary import PlanSummary

log = logging.getLogger(__name__)

PLAN_FILE = "plan.tfplan"
PULL_REQUEST_PLAN_FILE = "pull-request.tfplan"  # never applied: removed once summarized
# A pull request plans a protected environment against this key prefix, where nothing is ever written: no state.
NO_STATE_PREFIX = "pull-requests"
METADATA_FILE = "plan.json"
DESTROY_PLAN_FILE = "destroy.tfplan"


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
    init_argv = args.init_args(
        bucket=backend.bucket,
        key=f"{NO_STATE_PREFIX}/{backend.key}" if stateless else backend.key,
        region=backend.region,
        use_lockfile=backend.use_lockfile,
        endpoint_url=env.aws.endpoint_url,
    )
    files = root_files.config_files(root) + ([var_file] if var_file is not None else [])
    # init depends on the backend settings and the modules/providers, not on tfvars
    init_files = [p for p in files if not p.name.endswith((".tfvars", ".tfvars.json"))]
    init_stamp = root_files.fingerprint(init_files, base=config.root, extra=init_argv)
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
    declared = root_files.declared_variables(root)
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
    files = [p for p in root_files.config_files(ws.root) if not p.name.endswith((".tfvars", ".tfvars.json"))]
    stamp = root_files.fingerprint(files, base=prepared.base, extra=prepared.init_argv)
    (ws.data_dir / terraform.INIT_STAMP).write_text(stamp + "\n")


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
    argv = args.plan_args(
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
        summary = plan_summary.summarize(terraform.show(ws, out)) if changed else PlanSummary()
    for change in summary.destructive:
        verb = "DESTROYED" if change.kind == "destroy" else "REPLACED (destroyed and re-created)"
        prepared.reporter.warn(f"{name}: {change.address} will be {verb}")
    return summary
