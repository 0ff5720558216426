"""The terraform argv each builder produces, pinned as a table (inputs -> exact argv)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from deployctl.terraform import args, root_files

PLAN = Path("/state/plans/dev/plan.tfplan")
MOTO = "http://127.0.0.1:5055"

BACKEND = [
    "-backend-config=bucket=acme-api-tfstate",
    "-backend-config=key=dev/terraform.tfstate",
    "-backend-config=region=us-east-1",
]
INIT = ["terraform", "init", "-input=false", "-no-color", "-reconfigure"]
PLAN_HEAD = ["terraform", "plan", "-input=false", "-no-color", "-detailed-exitcode", f"-out={PLAN}"]


@pytest.mark.parametrize(
    ("builder", "kwargs", "expected"),
    [
        pytest.param(
            args.init_args,
            {"bucket": "acme-api-tfstate", "key": "dev/terraform.tfstate", "region": "us-east-1"},
            [*INIT, *BACKEND, "-backend-config=use_lockfile=true"],
            id="init-aws",
        ),
        pytest.param(
            args.init_args,
            {
                "bucket": "acme-api-tfstate",
                "key": "dev/terraform.tfstate",
                "region": "us-east-1",
                "use_lockfile": False,
            },
            [*INIT, *BACKEND, "-backend-config=use_lockfile=false"],
            id="init-no-lockfile",
        ),
        pytest.param(
            args.init_args,
            {"bucket": "acme-api-tfstate", "key": "dev/terraform.tfstate", "region": "us-east-1", "endpoint_url": MOTO},
            [
                *INIT,
                *BACKEND,
                "-backend-config=use_lockfile=true",
                f'-backend-config=endpoints={{s3="{MOTO}"}}',
                "-backend-config=use_path_style=true",
                "-backend-config=skip_credentials_validation=true",
                "-backend-config=skip_requesting_account_id=true",
                "-backend-config=skip_metadata_api_check=true",
            ],
            id="init-emulator",
        ),
        pytest.param(args.plan_args, {"out": PLAN}, PLAN_HEAD, id="plan-bare"),
        pytest.param(
            args.plan_args,
            {
                "out": PLAN,
                "variables": {"environment": "dev", "aws_endpoint_url": MOTO, "aws_skip_checks": True, "az_count": 3},
            },
            [
                *PLAN_HEAD,
                "-var",
                "environment=dev",
                "-var",
                f"aws_endpoint_url={MOTO}",
                "-var",
                "aws_skip_checks=true",
                "-var",
                "az_count=3",
            ],
            id="plan-vars-typed",
        ),
        pytest.param(
            args.plan_args,
            {"out": PLAN, "destroy": True, "lock_timeout": 30, "variables": {"enable_flow_logs": False}},
            [*PLAN_HEAD, "-destroy", "-lock-timeout=30s", "-var", "enable_flow_logs=false"],
            id="plan-destroy-lock-timeout",
        ),
        pytest.param(
            args.plan_args,
            {"out": PLAN, "lock": False, "variables": {"environment": "dev"}},
            [*PLAN_HEAD, "-lock=false", "-var", "environment=dev"],
            id="plan-pull-request-no-lock",
        ),
        pytest.param(
            args.plan_args,
            {
                "out": PLAN,
                "lock": False,
                "refresh": False,
                "lock_timeout": 30,
                "var_file": Path("/r/terraform/env/prod.tfvars"),
                "variables": {"environment": "prod"},
            },
            [
                *PLAN_HEAD,
                "-lock=false",
                "-refresh=false",
                "-var-file=/r/terraform/env/prod.tfvars",
                "-var",
                "environment=prod",
            ],
            id="plan-pull-request-protected-no-lock-no-refresh",
        ),
        pytest.param(
            args.plan_args,
            {"out": PLAN, "var_file": Path("/r/terraform/envs/prod.tfvars"), "variables": {"environment": "prod"}},
            [*PLAN_HEAD, "-var-file=/r/terraform/envs/prod.tfvars", "-var", "environment=prod"],
            id="plan-var-file-then-vars",
        ),
        pytest.param(
            args.plan_args,
            {"out": PLAN, "variables": {"name": "a b=c"}},
            [*PLAN_HEAD, "-var", "name=a b=c"],
            id="plan-var-with-spaces-is-one-arg",
        ),
        pytest.param(args.show_args, {"plan": PLAN}, ["terraform", "show", "-json", "-no-color", str(PLAN)], id="show"),
        pytest.param(
            args.apply_args,
            {"plan": PLAN},
            ["terraform", "apply", "-input=false", "-no-color", "-auto-approve", str(PLAN)],
            id="apply-saved-plan",
        ),
        pytest.param(
            args.apply_args,
            {"plan": PLAN, "lock_timeout": 0},
            ["terraform", "apply", "-input=false", "-no-color", "-auto-approve", "-lock-timeout=0s", str(PLAN)],
            id="apply-lock-timeout",
        ),
        pytest.param(
            args.force_unlock_args,
            {"lock_id": "0b7a3c1e-1111-2222-3333-444455556666"},
            ["terraform", "force-unlock", "-force", "-no-color", "0b7a3c1e-1111-2222-3333-444455556666"],
            id="force-unlock",
        ),
        pytest.param(
            args.import_args,
            {"address": 'module.registry.aws_ecr_repository.this["api"]', "import_id": "api"},
            [
                "terraform",
                "import",
                "-input=false",
                "-no-color",
                'module.registry.aws_ecr_repository.this["api"]',
                "api",
            ],
            id="import-bare",
        ),
        pytest.param(
            args.import_args,
            {
                "address": "module.cluster.aws_iam_role.cluster",
                "import_id": "deployctl-dev-cluster",
                "var_file": Path("/r/terraform/env/dev.tfvars"),
                "variables": {"environment": "dev", "aws_skip_checks": True},
                "lock_timeout": 30,
            },
            [
                "terraform",
                "import",
                "-input=false",
                "-no-color",
                "-lock-timeout=30s",
                "-var-file=/r/terraform/env/dev.tfvars",
                "-var",
                "environment=dev",
                "-var",
                "aws_skip_checks=true",
                "module.cluster.aws_iam_role.cluster",
                "deployctl-dev-cluster",
            ],
            id="import-var-file-vars-lock-timeout",
        ),
    ],
)
def test_argv(builder: Callable[..., list[str]], kwargs: dict[str, Any], expected: list[str]) -> None:
    argv = builder(**kwargs)
    assert argv == expected
    assert all(isinstance(arg, str) and arg for arg in argv)


@pytest.mark.parametrize(
    "builder",
    [args.init_args, args.plan_args, args.show_args, args.apply_args, args.import_args],
)
def test_builders_take_keyword_arguments_only(builder: Callable[..., list[str]]) -> None:
    with pytest.raises(TypeError):
        builder("positional")


@pytest.mark.parametrize(
    ("value", "expected"), [(True, "true"), (False, "false"), (3, "3"), ("us-east-1", "us-east-1")]
)
def test_var_values_are_terraform_literals(value: str | int | bool, expected: str) -> None:
    assert args.var_value(value) == expected


def test_declared_variables_and_local_modules(tmp_path: Path) -> None:
    root = tmp_path / "envs" / "dev"
    module = tmp_path / "modules" / "net"
    root.mkdir(parents=True)
    module.mkdir(parents=True)
    (root / "variables.tf").write_text('variable "environment" {}\nvariable  "aws_endpoint_url" {\n}\n')
    (root / "main.tf").write_text(
        'module "net" {\n  source = "../../modules/net"\n}\nmodule "x" { source = "hashicorp/x" }\n'
    )
    (root / "terraform.tfvars").write_text('environment = "dev"\n')
    (root / "prod.tfvars").write_text('environment = "prod"\n')  # another environment's -var-file: not ours
    (module / "main.tf").write_text('resource "terraform_data" "a" {}\n')
    (module / "README.md").write_text("not terraform\n")

    assert root_files.declared_variables(root) == {"environment", "aws_endpoint_url"}
    assert root_files.module_dirs(root) == [root.resolve(), module.resolve()]
    names = [p.name for p in root_files.config_files(root)]
    assert names == ["main.tf", "terraform.tfvars", "variables.tf", "main.tf"]

    before = root_files.fingerprint(root_files.config_files(root), base=tmp_path)
    (module / "main.tf").write_text('resource "terraform_data" "b" {}\n')
    after = root_files.fingerprint(root_files.config_files(root), base=tmp_path)
    assert before != after, "a change in a local module changes the fingerprint"
    assert root_files.fingerprint([], base=tmp_path, extra=["a"]) != root_files.fingerprint(
        [], base=tmp_path, extra=["b"]
    )
