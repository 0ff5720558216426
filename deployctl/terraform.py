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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployctl.errors import CommandFailedError, LockedError, PolicyError
from deployctl.runner import CommandResult, Runner

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
) -> list[str]:
    """``terraform plan -out`` with ``-detailed-exitcode`` (0 no changes, 1 error, 2 changes).

    ``-var`` values come after ``-var-file``: terraform lets the later one win, so deployctl's own
    variables (environment, emulator endpoint) override the file."""
    argv = [TERRAFORM, "plan", "-input=false", "-no-color", "-detailed-exitcode", f"-out={out}"]
    if destroy:
        argv.append("-destroy")
    if lock_timeout is not None:
        argv.append(f"-lock-timeout={lock_timeout}s")
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


def force_unlock_args(*, lock_id: str) -> list[str]:
    return [TERRAFORM, "force-unlock", "-force", lock_id]


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


# --------------------------------------------------------------------------- state lock errors


@dataclass(frozen=True)
class StateLockInfo:
    """Who holds terraform's state lock, as terraform printed it."""

    id: str
    who: str = ""
    operation: str = ""
    created: str = ""
    path: str = ""

    def describe(self) -> str:
        parts = [self.who or "unknown holder"]
        if self.operation:
            parts.append(f"running {self.operation.removeprefix('OperationType').lower()}")
        if self.created:
            parts.append(f"since {self.created}")
        return " ".join(parts)


_LOCK_FIELD_RE = re.compile(r"^\s*(ID|Path|Operation|Who|Created):\s*(.*?)\s*$", re.MULTILINE)


def parse_state_lock(stderr: str) -> StateLockInfo | None:
    """The holder of the state lock from terraform's "Error acquiring the state lock" text.

    Terraform reports lock contention only as human text (no machine-readable form, also not
    with ``-json``, whose diagnostic carries the same text): this is a documented fallback
    substring parse, pinned by tests/unit/test_plan_summary.py with captured output.
    """
    if "Error acquiring the state lock" not in stderr:
        return None
    _, _, block = stderr.partition("Lock Info:")
    fields = {name.lower(): value for name, value in _LOCK_FIELD_RE.findall(block)}
    return StateLockInfo(
        id=fields.get("id", ""),
        who=fields.get("who", ""),
        operation=fields.get("operation", ""),
        created=fields.get("created", ""),
        path=fields.get("path", ""),
    )


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


def _run(ws: Workspace, argv: Sequence[str], *, ok_codes: Sequence[int] = (0,), stream: bool = False) -> CommandResult:
    result = ws.runner.run(argv, cwd=ws.root, env=ws.env, timeout=ws.timeout, ok_codes=(*ok_codes, 1), stream=stream)
    if result.exit_code not in ok_codes:
        raise _error(result)
    return result


def _error(result: CommandResult) -> Exception:
    """A terraform failure as a precise error: state lock held, stale plan, or the command's failure."""
    lock = parse_state_lock(result.stderr)
    if lock is not None:
        return LockedError(
            f"terraform state is locked by {lock.describe()} (lock id {lock.id or 'unknown'})",
            "wait for that run to finish; if it is dead: deployctl lock break ENV --state --id " + (lock.id or "<ID>"),
            details={"state_lock": lock.__dict__},
        )
    if "Saved plan is stale" in result.stderr:
        return PolicyError(
            "the saved plan is stale: the state changed since it was made",
            "re-plan with `deployctl plan ENV`, review it, then apply",
        )
    tail = "\n".join(line for line in result.stderr.strip().splitlines() if line.strip())
    return CommandFailedError(result.argv, result.exit_code, "\n".join(tail.splitlines()[-15:]))


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
