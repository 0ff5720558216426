"""Terraform: a thin adapter over the runner (argv: ``args``; a plan's summary: ``plan_summary``; the root's
files: ``root_files``).

The adapter decides exit codes explicitly: ``plan -detailed-exitcode`` 0 = no changes, 2 = changes, anything else is an
error; every error is inspected for the few failures we turn into precise errors (state lock held, stale saved plan).
Changes are read from ``show -json`` (``resource_changes[].change.actions``), never from text.
"""

from __future__ import annotations

import json
import logging
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployctl.core.errors import DeployctlError
from deployctl.runner import CommandResult, Runner
from deployctl.terraform.args import force_unlock_args, import_args, show_args
from deployctl.terraform.errors import ExistingResource, command_error

log = logging.getLogger(__name__)

# Written into TF_DATA_DIR after a successful init: a later run with the same inputs skips init.
INIT_STAMP = "deployctl-init.sha256"


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
