"""Terraform's failures as precise errors (issue 13, item 6), from output captured from Terraform 1.11.4 and the
AWS provider 5.100.0 against moto: resources an interrupted apply created but never recorded, a state lock
held or already gone, and no ANSI codes in anything shown."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from deployctl.app.apply import apply
from deployctl.app.context import EnvContext
from deployctl.core.errors import CommandFailedError, ExitCode, LockedError, OperationError, UsageError
from deployctl.terraform import adapter as terraform
from deployctl.terraform import args
from deployctl.terraform.errors import (
    ExistingResource,
    StateLockInfo,
    command_error,
    existing_resources,
    parse_state_lock,
    plain,
)
from tests.unit.fakes import FakeAws, FakeS3
from tests.unit.test_plan_adapter import _runner, _target
from tests.unit.test_plan_summary import LOCKED_STDERR

DATA = Path(__file__).parent / "data"
# `terraform apply -no-color` after the state of four created resources was lost (an apply killed after
# creating them), and the same run without -no-color (ANSI colours and the diagnostic frame).
EXISTS = (DATA / "terraform_apply_already_exists.txt").read_text()
EXISTS_COLOR = (DATA / "terraform_apply_already_exists_color.txt").read_text()
# `terraform force-unlock -force [-no-color] ID` against the S3 backend: no lock there, or another lock.
UNLOCK_GONE = (DATA / "terraform_force_unlock_gone.txt").read_text()
UNLOCK_GONE_COLOR = (DATA / "terraform_force_unlock_gone_color.txt").read_text()
UNLOCK_OTHER = (DATA / "terraform_force_unlock_other.txt").read_text()

FOUND = [
    ("aws_iam_role.cluster", "deployctl-dev-cluster", "EntityAlreadyExists"),
    ("aws_s3_bucket.logs", "deployctl-dev-logs", "BucketAlreadyExists"),
    ('aws_ecr_repository.repo["api"]', "api", "RepositoryAlreadyExistsException"),
    ("aws_cloudwatch_log_group.lg", "/deployctl/dev", "ResourceAlreadyExistsException"),
]


def _no_command(resource: ExistingResource) -> str:
    return f"import {resource.address}"


def test_captured_color_output_has_ansi_codes_and_plain_removes_them() -> None:
    assert "\x1b[" in EXISTS_COLOR and "\x1b[" in UNLOCK_GONE_COLOR, "the captures are what a TTY-less run got"
    assert "\x1b" not in plain(EXISTS_COLOR)
    assert plain("\x1b[1m\x1b[31mError: \x1b[0m\x1b[0mboom\x1b[4m{\x1b[0m") == "Error: boom{"


@pytest.mark.parametrize("output", [EXISTS, EXISTS_COLOR], ids=["no-color", "color"])
def test_resources_that_exist_but_are_not_in_state_are_found_with_their_import_ids(output: str) -> None:
    found = existing_resources(output)
    assert [(r.address, r.import_id) for r in found] == [(address, name) for address, name, _ in FOUND]
    for resource, (_, _, code) in zip(found, FOUND, strict=True):
        assert code in resource.summary
        assert "RequestID" not in resource.summary, "the SDK's preamble is trimmed"


@pytest.mark.parametrize(
    ("address", "summary", "import_id", "resource_type"),
    [
        (
            "module.cluster.aws_iam_role.cluster",
            "creating IAM Role (deployctl-dev-cluster): EntityAlreadyExists: Role already exists.",
            "deployctl-dev-cluster",
            "aws_iam_role",
        ),
        (
            'module.registry.aws_ecr_repository.this["api"]',
            "creating ECR Repository (api): RepositoryAlreadyExistsException: exists",
            "api",
            "aws_ecr_repository",
        ),
        (  # a policy is imported by its ARN, which the error does not give: the generic form
            "module.cluster.aws_iam_policy.lb",
            "creating IAM Policy (lb): EntityAlreadyExists: A policy called lb already exists.",
            None,
            "aws_iam_policy",
        ),
        (  # the generic wording of any provider
            "google_storage_bucket.b",
            "googleapi: Error 409: Your previous request to create the named bucket succeeded and you already own "
            "it., conflict: already exists",
            None,
            "google_storage_bucket",
        ),
    ],
)
def test_import_id_only_when_the_name_is_the_id(
    address: str, summary: str, import_id: str | None, resource_type: str
) -> None:
    output = f"\nError: {summary}\n\n  with {address},\n  on main.tf line 1, in resource:\n   1: resource {{\n"
    (found,) = existing_resources(output)
    assert (found.address, found.import_id, found.resource_type) == (address, import_id, resource_type)


def test_other_failures_are_not_taken_for_existing_resources() -> None:
    output = "\nError: creating IAM Role (x): AccessDenied: not authorized\n\n  with aws_iam_role.x,\n"
    assert existing_resources(output) == []
    error = command_error(["terraform", "apply"], 1, output, env_name="dev", import_command=_no_command)
    assert type(error) is CommandFailedError
    assert "AccessDenied" in error.message


def test_the_apply_error_names_each_resource_and_the_hint_gives_runnable_imports(tmp_path: Path) -> None:
    """Through the apply use case: the hint's lines run `terraform import` with the environment's data dir
    (its backend), root, variables file and variables, for the environment that failed."""
    runner = _runner()
    runner.answers = {**runner.answers, "apply": (1, "", EXISTS_COLOR)}
    written, events = _target(tmp_path, runner)
    target = EnvContext(written.config, "dev", runner, events, aws=FakeAws(FakeS3()))  # the lock in memory
    with pytest.raises(OperationError) as caught:
        apply(target, auto_approve=True)
    error = caught.value
    assert error.exit_code == ExitCode.FAILED
    assert "\x1b" not in error.message and error.hint is not None and "\x1b" not in error.hint
    assert "terraform apply of dev: 4 resource(s) exist but are not in terraform's state" in error.message
    for address, _, code in FOUND:
        assert f"  {address}: creating" in error.message and code in error.message
    assert "then re-run `deployctl apply dev`" in error.hint
    commands = [line.strip().split("  # ")[0] for line in error.hint.splitlines()[1:]]
    assert len(commands) == 4
    data_dir = (tmp_path / ".deployctl" / "terraform" / "dev").resolve()
    for command, (address, import_id, _) in zip(commands, FOUND, strict=True):
        argv = shlex.split(command)
        assert argv[:3] == [f"TF_DATA_DIR={data_dir}", "terraform", f"-chdir={(tmp_path / 'tf').resolve()}"]
        assert argv[3:6] == ["import", "-input=false", "-no-color"]
        assert "environment=dev" in argv and "az_count=3" in argv
        assert argv[-2:] == [address, import_id]
    assert "only if the bucket is yours" in error.hint, "BucketAlreadyExists may be another account's name"
    assert error.details["existing"] == [{"address": a, "import_id": i} for a, i, _ in FOUND]


def test_import_command_without_an_id_says_where_to_find_it(tmp_path: Path) -> None:
    ws = terraform.Workspace(root=tmp_path, data_dir=tmp_path / "data", runner=_runner(), name="prod")
    output = "\nError: creating IAM Policy (lb): EntityAlreadyExists: exists\n\n  with aws_iam_policy.lb,\n"
    error = command_error(["terraform", "apply"], 1, output, env_name="prod", import_command=ws.import_command)
    assert error.hint is not None
    assert "aws_iam_policy.lb '<ID>'  # <ID>: the aws_iam_policy's import ID" in error.hint
    assert "deployctl apply prod" in error.hint


def test_state_lock_parse_of_captured_stderr() -> None:
    """Terraform reports a held state lock only as text: this substring parse is the documented fallback."""
    info = parse_state_lock(LOCKED_STDERR)
    assert info == StateLockInfo(
        id="6c0bf6f8-56b5-9a0f-8d3f-1a4d3f9c2c11",
        who="runner@ci-host-7",
        operation="OperationTypeApply",
        created="2025-11-22 16:05:42.123456789 +0000 UTC",
        path="acme-api-tfstate/dev/terraform.tfstate",
    )
    assert info.describe() == "runner@ci-host-7 running apply since 2025-11-22 16:05:42.123456789 +0000 UTC"
    assert parse_state_lock("Error: something else") is None
    partial = parse_state_lock("Error: Error acquiring the state lock\n(no lock info)")
    assert partial is not None and partial.id == ""
    coloured = "\n".join(f"\x1b[31m│\x1b[0m {line}" for line in LOCKED_STDERR.splitlines())
    assert parse_state_lock(coloured) == info


def test_state_lock_hint_names_the_environment() -> None:
    error = command_error(["terraform", "plan"], 1, LOCKED_STDERR, env_name="prod", import_command=_no_command)
    assert isinstance(error, LockedError) and error.hint is not None
    assert "deployctl lock break prod --state --id 6c0bf6f8-56b5-9a0f-8d3f-1a4d3f9c2c11" in error.hint
    assert "ENV" not in error.hint


@pytest.mark.parametrize("output", [UNLOCK_GONE, UNLOCK_GONE_COLOR], ids=["no-color", "color"])
def test_breaking_a_state_lock_already_gone_says_so_without_ansi(output: str) -> None:
    argv = args.force_unlock_args(lock_id="1234-abcd")
    error = command_error(argv, 1, output, env_name="dev", import_command=_no_command)
    assert isinstance(error, UsageError)
    assert error.message == "terraform state lock 1234-abcd of dev is not held (released already): nothing to break"
    assert "\x1b" not in error.message


def test_breaking_a_state_lock_by_the_wrong_id_names_the_holder() -> None:
    argv = args.force_unlock_args(lock_id="1234-abcd")
    error = command_error(argv, 1, UNLOCK_OTHER, env_name="dev", import_command=_no_command)
    assert isinstance(error, UsageError) and error.hint is not None
    assert "not locked by 1234-abcd: it is locked by x@y running apply" in error.message
    assert error.hint == "if that run is dead: deployctl lock break dev --state --id real-id-1"


def test_any_other_failure_keeps_its_tail_without_ansi() -> None:
    stderr = "\x1b[31m╷\x1b[0m\n\x1b[31m│\x1b[0m \x1b[1m\x1b[31mError: \x1b[0mUnsupported argument\x1b[0m\n"
    error = command_error(["terraform", "init"], 1, stderr, env_name="dev", import_command=_no_command)
    assert isinstance(error, CommandFailedError)
    assert "Error: Unsupported argument" in error.message and "\x1b" not in error.message
