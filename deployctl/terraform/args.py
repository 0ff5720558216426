"""terraform's command lines, pure and table-tested (Terraform >= 1.10): `-var` values redacted wherever a command
line is logged."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

TERRAFORM = "terraform"


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
