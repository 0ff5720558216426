"""`apply` after an apply that created resources but never recorded them (issue 13, item 6), with real
terraform, the AWS provider and moto: the error lists what exists but is not in the state, and the hint's
`terraform import` lines, run as printed, bring them into the state so the next apply succeeds.

The lost state is made by deleting the state object after an apply (what a kill between creating the
resources and writing the state leaves); the rest is real: deployctl as a subprocess, terraform, moto."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from deployctl.sandbox import tools
from deployctl.sandbox.lab import Lab

pytestmark = pytest.mark.lab

BUCKET = "import-tfstate"
MAIN_TF = """
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
  backend "s3" {}
}

variable "environment" { type = string }
variable "region" { type = string }
variable "aws_endpoint_url" {
  type    = string
  default = null
}
variable "aws_skip_checks" {
  type    = bool
  default = false
}
variable "repositories" { type = list(string) }

provider "aws" {
  region                      = var.region
  skip_credentials_validation = var.aws_skip_checks
  skip_requesting_account_id  = var.aws_skip_checks
  skip_metadata_api_check     = var.aws_skip_checks
  s3_use_path_style           = var.aws_skip_checks
  endpoints {
    iam = var.aws_endpoint_url
    ecr = var.aws_endpoint_url
    s3  = var.aws_endpoint_url
    sts = var.aws_endpoint_url
  }
}

resource "aws_iam_role" "cluster" {
  name = "deployctl-${var.environment}-cluster"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "eks.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
}

resource "aws_ecr_repository" "this" {
  for_each = toset(var.repositories)
  name     = "${var.environment}/${each.key}"
}
"""


@pytest.fixture(scope="module")
def moto(lab_tools: tools.Tools, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    own = Lab(state_dir=tmp_path_factory.mktemp("import"), tools=lab_tools)
    own.start(["moto"])
    try:
        yield own
    finally:
        own.stop()


def deployctl(repo: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "deployctl", "--config", str(repo / "pyproject.toml"), *args]
    started = time.monotonic()
    done = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=600, check=False)
    measure(f"deployctl {' '.join(args)}: exit {done.returncode} in {time.monotonic() - started:.1f}s")
    return done


def measure(line: str) -> None:
    os.write(2, f"\n[measure] {line}\n".encode())


def test_resources_created_but_not_recorded_are_named_and_the_hint_imports_them(moto: Lab, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "tf").mkdir(parents=True)
    (repo / "tf" / "main.tf").write_text(MAIN_TF)
    (repo / "tf" / "dev.tfvars").write_text('repositories = ["api"]\n')
    (repo / "pyproject.toml").write_text(
        f"""[tool.deployctl]
[tool.deployctl.environments.dev]
aws = {{ region = "us-east-1", endpoint_url = "{moto.moto_url}" }}
terraform = {{ root = "tf", var_file = "tf/dev.tfvars", backend = {{ bucket = "{BUCKET}", key = "dev/terraform.tfstate", region = "us-east-1" }} }}
"""
    )
    env = {**os.environ, **moto.env(), "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    for name in ("AWS_PROFILE", "DEPLOYCTL_CONFIG", "DEPLOYCTL_SANDBOX", "TF_DATA_DIR"):
        env.pop(name, None)
    s3 = boto3.client(
        "s3",
        endpoint_url=moto.moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # moto's documented fake credentials
    )
    s3.create_bucket(Bucket=BUCKET)

    first = deployctl(repo, env, "apply", "dev", "--auto-approve")
    assert first.returncode == 0, first.stderr
    s3.delete_object(Bucket=BUCKET, Key="dev/terraform.tfstate")  # created, never recorded

    again = deployctl(repo, env, "apply", "dev", "--auto-approve")
    assert again.returncode == 1, again.stderr
    err = again.stderr
    assert "error: terraform apply of dev: 2 resource(s) exist but are not in terraform's state" in err
    assert "  aws_iam_role.cluster: creating IAM Role (deployctl-dev-cluster): EntityAlreadyExists" in err
    assert '  aws_ecr_repository.this["api"]: creating ECR Repository (dev/api): RepositoryAlreadyExists' in err
    assert "then re-run `deployctl apply dev`" in err
    assert "\x1b" not in err and "internal error" not in err
    hint = err.split("hint: ", 1)[1].splitlines()[1:]
    assert len(hint) == 2, err
    for line in hint:
        assert "<ID>" not in line, "the ids are in terraform's errors: each line is complete"
        started = time.monotonic()
        run = subprocess.run(
            ["bash", "-c", line.strip()], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
        )
        measure(f"the hint's terraform import: exit {run.returncode} in {time.monotonic() - started:.1f}s")
        assert run.returncode == 0, f"{line}\n{run.stdout}\n{run.stderr}"

    done = deployctl(repo, env, "apply", "dev", "--auto-approve")
    assert done.returncode == 0, done.stderr
