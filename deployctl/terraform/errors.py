"""What a failed terraform run said, as a precise error: its state lock held by another run, a state lock to
break that is not there, a stale saved plan, resources that exist but are not in the state (an apply killed
after creating them), or else the command's own failure with the tail of its output.

Terraform reports these only as human text (its ``-json`` diagnostics carry the same sentences): each is a
documented fallback substring parse, pinned by tests/unit/test_terraform_errors.py with captured output.
Everything shown is stripped of ANSI codes first (terraform colours its output unless told ``-no-color``,
and escape codes must not reach a CI log or a JSON document).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from deployctl.core.errors import (
    CommandFailedError,
    DeployctlError,
    LockedError,
    OperationError,
    PolicyError,
    UsageError,
)

ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_BOX_RE = re.compile(r"^[╷╵]\s*$|^│ ?", re.MULTILINE)  # the frame of a coloured diagnostic
_LOCK_FIELD_RE = re.compile(r"^\s*(ID|Path|Operation|Who|Created):\s*(.*?)\s*$", re.MULTILINE)
# Resources already there: IAM, S3 (yours / a name another account owns), ECR, and the generic wording.
ALREADY_EXISTS = (
    "EntityAlreadyExists",
    "BucketAlreadyOwnedByYou",
    "BucketAlreadyExists",
    "RepositoryAlreadyExistsException",
    "ResourceAlreadyExistsException",
    "AlreadyExistsException",
    "already exists",
)
# Resource types whose import ID is the name terraform's AWS provider prints in "creating <Thing> (NAME)".
NAME_IS_IMPORT_ID = frozenset(
    {
        "aws_cloudwatch_log_group",
        "aws_dynamodb_table",
        "aws_ecr_repository",
        "aws_eks_cluster",
        "aws_iam_group",
        "aws_iam_instance_profile",
        "aws_iam_role",
        "aws_iam_user",
        "aws_kms_alias",
        "aws_s3_bucket",
    }
)
_CREATING_RE = re.compile(r"^creating [^(]+\((?P<name>[^()]+)\)")
_WITH_RE = re.compile(r"^\s*with (?P<address>\S+?),?\s*$", re.MULTILINE)
_TYPE_RE = re.compile(r"(?:^|\.)(?P<type>[a-z][a-z0-9]*_[a-z0-9_]+)\.[A-Za-z_][\w-]*(?:\[[^\]]+\])?\Z")
# The AWS SDK's preamble in a provider error ("operation error IAM: CreateRole, https response error ...").
_SDK_NOISE_RE = re.compile(
    r"operation error [^,]+, https response error StatusCode: \d+, RequestID: [^,]*, (HostID: [^,]*, )?"
)


def plain(text: str) -> str:
    """``text`` without ANSI escape codes."""
    return ANSI_RE.sub("", text)


def _unframed(text: str) -> str:
    """Terraform's text without colours and without the frame it draws around a coloured diagnostic."""
    return _BOX_RE.sub("", plain(text))


# --------------------------------------------------------------------------- state lock


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


def parse_state_lock(stderr: str) -> StateLockInfo | None:
    """The holder of the state lock from terraform's "Error acquiring the state lock" text."""
    stderr = _unframed(stderr)
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


def unlock_refusal(output: str, lock_id: str, env_name: str) -> UsageError | None:
    """``force-unlock`` of a lock that is not there (already released) or has another ID: say which."""
    text = plain(output)
    if "Failed to unlock state" not in text:
        return None
    other = re.search(r"does not match the existing lock ID '([^']+)'", text)
    if other:
        fields = {name.lower(): value for name, value in _LOCK_FIELD_RE.findall(text.partition("Lock Info:")[2])}
        holder = StateLockInfo(other[1], fields.get("who", ""), fields.get("operation", ""), fields.get("created", ""))
        return UsageError(
            f"terraform state of {env_name} is not locked by {lock_id}: it is locked by {holder.describe()} "
            f"(lock id {other[1]})",
            f"if that run is dead: deployctl lock break {env_name} --state --id {other[1]}",
        )
    if re.search(r"NoSuchKey|not locked|StatusCode: 404|no lock", text, re.IGNORECASE):
        return UsageError(
            f"terraform state lock {lock_id} of {env_name} is not held (released already): nothing to break",
            f"re-run what was locked out (e.g. `deployctl plan {env_name}`)",
        )
    return None


# --------------------------------------------------------------------------- resources that already exist


@dataclass(frozen=True)
class ExistingResource:
    """A resource terraform tried to create and found there: in the cloud, not in the state."""

    address: str
    import_id: str | None  # None when terraform's error does not give it
    summary: str

    @property
    def resource_type(self) -> str:
        match = _TYPE_RE.search(self.address)
        return match["type"] if match else ""


ImportCommand = Callable[[ExistingResource], str]  # the runnable `terraform import` of one resource


def diagnostics(output: str) -> list[tuple[str, str]]:
    """Each ``Error:`` diagnostic of terraform's output as (summary line, the whole block), frames removed."""
    text = _unframed(output)
    blocks = re.split(r"^(?=Error: )", text, flags=re.MULTILINE)
    found = []
    for block in blocks:
        if block.startswith("Error: "):
            summary = block.splitlines()[0].removeprefix("Error: ").strip()
            found.append((summary, block))
    return found


def existing_resources(output: str) -> list[ExistingResource]:
    """The resources an apply failed to create because they exist already (a killed apply's leftovers)."""
    found = []
    for summary, block in diagnostics(output):
        if not any(marker in summary for marker in ALREADY_EXISTS):
            continue
        where = _WITH_RE.search(block)
        if where is None:
            continue
        address = where["address"]
        match = _TYPE_RE.search(address)
        named = _CREATING_RE.match(summary)
        import_id = named["name"] if named and match and match["type"] in NAME_IS_IMPORT_ID else None
        found.append(ExistingResource(address, import_id, _SDK_NOISE_RE.sub("", summary)))
    return found


def hint_line(command: str, resource: ExistingResource) -> str:
    """One import command of the hint, with what to fill in or check."""
    if resource.import_id is None:
        return f"{command}  # <ID>: the {resource.resource_type or 'resource'}'s import ID (its provider docs: Import)"
    if resource.resource_type == "aws_s3_bucket" and "BucketAlreadyExists" in resource.summary:
        return f"{command}  # only if the bucket is yours: S3 bucket names are global"
    return command


def resources_exist(
    existing: Sequence[ExistingResource], env_name: str, import_command: ImportCommand, tail: str
) -> OperationError:
    name = env_name
    listed = "\n".join(f"  {r.address}: {r.summary}" for r in existing)
    return OperationError(
        f"terraform apply of {name}: {len(existing)} resource(s) exist but are not in terraform's state "
        f"(an apply stopped after creating them?):\n{listed}",
        "import each into the state with the environment's AWS credentials, then re-run "
        f"`deployctl apply {name}` (or delete them if they are not meant to exist):\n"
        + "\n".join(f"  {hint_line(import_command(r), r)}" for r in existing),
        details={
            "existing": [{"address": r.address, "import_id": r.import_id} for r in existing],
            "stderr_tail": tail,
        },
    )


# --------------------------------------------------------------------------- one place errors are built


def command_error(
    argv: Sequence[str],
    exit_code: int,
    stderr: str,
    *,
    env_name: str,
    import_command: ImportCommand,
    stdout: str = "",
) -> DeployctlError:
    """A failed terraform run as a precise error, ANSI-free, its hints naming ``env_name``; ``import_command``
    is the runnable ``terraform import`` of one resource (for the already-exists hint)."""
    name = env_name
    text = plain(stderr)
    lock = parse_state_lock(text)
    if lock is not None:
        return LockedError(
            f"terraform state is locked by {lock.describe()} (lock id {lock.id or 'unknown'})",
            f"wait for that run to finish; if it is dead: deployctl lock break {name} --state --id {lock.id or '<ID>'}",
            details={"state_lock": lock.__dict__},
        )
    if "Saved plan is stale" in text:
        return PolicyError(
            "the saved plan is stale: the state changed since it was made",
            f"re-plan with `deployctl plan {name}`, review it, then apply",
        )
    lines = [line for line in text.strip().splitlines() if line.strip()]
    tail = "\n".join(lines[-15:])
    if len(argv) > 1 and argv[1] == "force-unlock":
        refused = unlock_refusal(text + "\n" + plain(stdout), argv[-1], name)
        if refused is not None:
            return refused
    existing = existing_resources(text)
    if existing:
        return resources_exist(existing, name, import_command, tail)
    return CommandFailedError(list(argv), exit_code, tail)
