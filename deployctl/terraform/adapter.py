"""Terraform: pure argv builders, plan-summary parsing, and a thin adapter over the runner.

Argv builders are plain functions with keyword-only typed parameters (table-tested in
tests/unit/test_terraform_args.py). The adapter decides exit codes explicitly: ``plan
-detailed-exitcode`` 0 = no changes, 2 = changes, anything else is an error; every error is
inspected for the few failures we turn into precise errors (state lock held, stale saved plan).
Changes are read from ``show -json`` (``resource_changes[].change.actions``), never from text.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployctl.core.errors import DeployctlError
from deployctl.runner import CommandResult, Runner
from deployctl.terraform.errors import ExistingResource, command_error

log = logging.getLogger(__name__)

TERRAFORM = "terraform"
# Written into TF_DATA_DIR after a successful init: a later run with the same inputs skips init.
INIT_STAMP = "deployctl-init.sha256"

_VARIABLE_RE = re.compile(r'^\s*variable\s+"([A-Za-z_][A-Za-z0-9_-]*)"', re.MULTILINE)
_LOCAL_SOURCE_RE = re.compile(r'^\s*source\s*=\s*"(\.{1,2}/[^"]*)"', re.MULTILINE)
_CONFIG_SUFFIXES = (".tf", ".tf.json")
# Variables files terraform loads by itself; any other (an environment's -var-file) counts only when passed.
_AUTO_VARS = ("terraform.tfvars", "terraform.tfvars.json", ".auto.tfvars", ".auto.tfvars.json")


# --------------------------------------------------------------------------- argv builders


def var_value(value: str | int | bool) -> str:
    """A ``-var`` value as terraform reads it (booleans are ``true``/``false``, not Python's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def init_args(
    *,
    bucket: str,
    key: str,
    region: str,
    use_lockfile: bool = True,
    endpoint_url: str | None = None,
) -> list[str]:
    """``terraform init`` for a partial S3 backend; ``endpoint_url`` points it at an emulator (moto)."""
    argv = [TERRAFORM, "init", "-input=false", "-no-color", "-reconfigure"]
    settings = [
        f"bucket={bucket}",
        f"key={key}",
        f"region={region}",
        f"use_lockfile={var_value(use_lockfile)}",
    ]
    if endpoint_url is not None:
        settings += [
            f'endpoints={{s3="{endpoint_url}"}}',
            "use_path_style=true",
            "skip_credentials_validation=true",
            "skip_requesting_account_id=true",
            "skip_metadata_api_check=true",
        ]
    argv += [f"-backend-config={setting}" for setting in settings]
    return argv


def plan_args(
    *,
    out: Path,
    variables: Mapping[str, str | int | bool] | None = None,
    var_file: Path | None = None,
    destroy: bool = False,
    lock_timeout: int | None = None,
    lock: bool = True,
    refresh: bool = True,
) -> list[str]:
    """``terraform plan -out`` with ``-detailed-exitcode`` (0 no changes, 1 error, 2 changes).

    ``lock=False`` (``-lock=false``): a pull request's plan, whose role may write nothing, not even a lock file;
    ``refresh=False`` (``-refresh=false``): one made without the environment's state, which it may not read.
    ``-var`` values come after ``-var-file``: terraform lets the later one win, so deployctl's own
    variables (environment, emulator endpoint) override the file."""
    argv = [TERRAFORM, "plan", "-input=false", "-no-color", "-detailed-exitcode", f"-out={out}"]
    if destroy:
        argv.append("-destroy")
    if not lock:
        argv.append("-lock=false")
    elif lock_timeout is not None:
        argv.append(f"-lock-timeout={lock_timeout}s")
    if not refresh:
        argv.append("-refresh=false")
    if var_file is not None:
        argv.append(f"-var-file={var_file}")
    for name, value in (variables or {}).items():
        argv += ["-var", f"{name}={var_value(value)}"]
    return argv


def show_args(*, plan: Path) -> list[str]:
    return [TERRAFORM, "show", "-json", "-no-color", str(plan)]


def apply_args(*, plan: Path, lock_timeout: int | None = None) -> list[str]:
    """``terraform apply`` of a saved plan: no variables, no prompt (a saved plan is already approved)."""
    argv = [TERRAFORM, "apply", "-input=false", "-no-color", "-auto-approve"]
    if lock_timeout is not None:
        argv.append(f"-lock-timeout={lock_timeout}s")
    argv.append(str(plan))
    return argv


def import_args(
    *,
    address: str,
    import_id: str,
    var_file: Path | None = None,
    variables: Mapping[str, str | int | bool] | None = None,
    lock_timeout: int | None = None,
) -> list[str]:
    """``terraform import ADDRESS ID``, with the variables the root needs to evaluate its configuration."""
    argv = [TERRAFORM, "import", "-input=false", "-no-color"]
    if lock_timeout is not None:
        argv.append(f"-lock-timeout={lock_timeout}s")
    if var_file is not None:
        argv.append(f"-var-file={var_file}")
    for name, value in (variables or {}).items():
        argv += ["-var", f"{name}={var_value(value)}"]
    return [*argv, address, import_id]


def force_unlock_args(*, lock_id: str) -> list[str]:
    return [TERRAFORM, "force-unlock", "-force", "-no-color", lock_id]


# --------------------------------------------------------------------------- plan summary


@dataclass(frozen=True)
class ResourceChange:
    address: str
    actions: tuple[str, ...]

    @property
    def replace(self) -> bool:
        return "create" in self.actions and "delete" in self.actions

    @property
    def kind(self) -> str:
        """One of add, change, destroy, replace."""
        if self.replace:
            return "replace"
        if "create" in self.actions:
            return "add"
        if "delete" in self.actions:
            return "destroy"
        return "change"

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "actions": list(self.actions), "replace": self.replace, "kind": self.kind}


@dataclass(frozen=True)
class PlanSummary:
    """What a plan changes, from ``show -json``; no-op and read actions are left out."""

    changes: tuple[ResourceChange, ...] = ()
    output_changes: tuple[str, ...] = ()

    def count(self, kind: str) -> int:
        return sum(1 for change in self.changes if change.kind == kind)

    @property
    def add(self) -> int:
        return self.count("add")

    @property
    def change(self) -> int:
        return self.count("change")

    @property
    def destroy(self) -> int:
        return self.count("destroy")

    @property
    def replace(self) -> int:
        return self.count("replace")

    @property
    def has_changes(self) -> bool:
        return bool(self.changes or self.output_changes)

    @property
    def destructive(self) -> tuple[ResourceChange, ...]:
        return tuple(c for c in self.changes if c.kind in ("destroy", "replace"))

    def counts(self) -> dict[str, int]:
        return {"add": self.add, "change": self.change, "destroy": self.destroy, "replace": self.replace}

    def headline(self) -> str:
        if not self.changes:
            return "no changes" if not self.output_changes else f"outputs only: {', '.join(self.output_changes)}"
        return f"{self.add} to add, {self.change} to change, {self.destroy} to destroy, {self.replace} to replace"


def summarize(document: Mapping[str, Any]) -> PlanSummary:
    """Read ``terraform show -json PLAN``: ``resource_changes[].change.actions`` and ``output_changes``."""
    changes = []
    for item in document.get("resource_changes") or ():
        actions = tuple(str(a) for a in item.get("change", {}).get("actions", ()))
        if not actions or set(actions) <= {"no-op", "read"}:
            continue
        changes.append(ResourceChange(address=str(item["address"]), actions=actions))
    outputs = tuple(
        sorted(
            name
            for name, change in (document.get("output_changes") or {}).items()
            if set(change.get("actions", ())) - {"no-op"}
        )
    )
    return PlanSummary(changes=tuple(changes), output_changes=outputs)


# --------------------------------------------------------------------------- configuration files


def declared_variables(root: Path) -> set[str]:
    """Variable names declared in the root module's ``*.tf`` files."""
    names: set[str] = set()
    for path in sorted(root.glob("*.tf")):
        names.update(_VARIABLE_RE.findall(path.read_text(encoding="utf-8", errors="replace")))
    return names


def module_dirs(root: Path) -> list[Path]:
    """The root and every local module it uses (``source = "./..."`` or ``"../..."``), transitively."""
    seen: list[Path] = []
    pending = [root.resolve()]
    while pending:
        directory = pending.pop()
        if directory in seen or not directory.is_dir():
            continue
        seen.append(directory)
        for path in sorted(directory.glob("*.tf")):
            for source in _LOCAL_SOURCE_RE.findall(path.read_text(encoding="utf-8", errors="replace")):
                pending.append((directory / source).resolve())
    return seen


def config_files(root: Path) -> list[Path]:
    """Files whose content decides what a plan does: ``*.tf`` and the auto-loaded ``*.tfvars`` of the root
    and its local modules, and the root's dependency lock file (the caller adds a ``-var-file``)."""
    files: list[Path] = []
    for directory in module_dirs(root):
        files += sorted(
            p for p in directory.iterdir() if p.is_file() and p.name.endswith(_CONFIG_SUFFIXES + _AUTO_VARS)
        )
    lock = root / ".terraform.lock.hcl"
    if lock.is_file():
        files.append(lock)
    return files


def fingerprint(files: Iterable[Path], *, base: Path, extra: Sequence[str] = ()) -> str:
    """sha256 over file paths (relative to ``base``) and contents, plus ``extra`` strings."""
    digest = hashlib.sha256()
    for text in extra:
        digest.update(text.encode())
        digest.update(b"\0")
    for path in files:
        try:
            name = str(path.resolve().relative_to(base.resolve()))
        except ValueError:
            name = str(path.resolve())
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------- adapter


@dataclass(frozen=True)
class Workspace:
    """One initialised terraform root: where it runs, with which environment, through which runner.

    ``data_dir`` (TF_DATA_DIR) is per environment under deployctl's state dir, so the repo's
    root directories stay clean and two environments never share backend settings.
    """

    root: Path
    data_dir: Path
    runner: Runner
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = None
    name: str = "ENV"  # the environment, named in hints
    var_file: Path | None = None  # what an ``import`` needs besides the backend in the data dir
    variables: Mapping[str, str | int | bool] = field(default_factory=dict)

    def import_command(self, resource: ExistingResource) -> str:
        """The ``terraform import`` of ``resource`` as a shell line runnable from anywhere (printed in hints)."""
        argv = import_args(
            address=resource.address,
            import_id=resource.import_id or "<ID>",
            var_file=self.var_file,
            variables=self.variables,
        )
        return f"TF_DATA_DIR={shlex.quote(str(self.data_dir))} " + shlex.join(
            [argv[0], f"-chdir={self.root}", *argv[1:]]
        )


def _run(ws: Workspace, argv: Sequence[str], *, ok_codes: Sequence[int] = (0,), stream: bool = False) -> CommandResult:
    result = ws.runner.run(argv, cwd=ws.root, env=ws.env, timeout=ws.timeout, ok_codes=(*ok_codes, 1), stream=stream)
    if result.exit_code not in ok_codes:
        raise _error(ws, result)
    return result


def _error(ws: Workspace, result: CommandResult) -> DeployctlError:
    """A terraform failure as a precise error (``terraform_errors``: the one place they are built)."""
    return command_error(
        result.argv,
        result.exit_code,
        result.stderr,
        env_name=ws.name,
        import_command=ws.import_command,
        stdout=result.stdout,
    )


def init_needed(ws: Workspace, stamp: str) -> bool:
    """Whether ``init`` must run: the data dir was not initialised with these exact inputs.

    ``stamp`` hashes everything init depends on (argv, .tf files, lock file). Skipping an
    unchanged init saves ~10 s per run: init re-hashes the provider binary every time.
    """
    stamp_file = ws.data_dir / INIT_STAMP
    return not (
        stamp_file.is_file()
        and stamp_file.read_text().strip() == stamp
        and (ws.data_dir / "terraform.tfstate").is_file()
    )


def init(ws: Workspace, argv: Sequence[str], *, stamp: str) -> None:
    """Run ``init`` and record ``stamp`` so the next run with the same inputs can skip it."""
    ws.data_dir.mkdir(parents=True, exist_ok=True)
    stamp_file = ws.data_dir / INIT_STAMP
    stamp_file.unlink(missing_ok=True)
    _run(ws, argv, stream=True)
    stamp_file.write_text(stamp + "\n")


def plan(ws: Workspace, argv: Sequence[str]) -> bool:
    """Run ``plan -detailed-exitcode``; True when it found changes (exit 2)."""
    return _run(ws, argv, ok_codes=(0, 2), stream=True).exit_code == 2


def show(ws: Workspace, plan_file: Path) -> dict[str, Any]:
    result = _run(ws, show_args(plan=plan_file))
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def apply(ws: Workspace, argv: Sequence[str]) -> CommandResult:
    return _run(ws, argv, stream=True)


def force_unlock(ws: Workspace, lock_id: str) -> CommandResult:
    return _run(ws, force_unlock_args(lock_id=lock_id))


def import_resource(ws: Workspace, address: str, import_id: str, *, lock_timeout: int | None = None) -> CommandResult:
    """``terraform import ADDRESS ID`` in the workspace (its backend, variables file and variables)."""
    argv = import_args(
        address=address, import_id=import_id, var_file=ws.var_file, variables=ws.variables, lock_timeout=lock_timeout
    )
    return _run(ws, argv, stream=True)
