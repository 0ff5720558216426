"""One AWS account per environment: ``aws.role_arn`` with ``aws.account_id`` is the way into the environment from
another account. A caller already in the account (its own OIDC role in CI) keeps its credentials; one from
elsewhere (prod's deploy role reading dev's ledger and cluster for a promotion) assumes the role, once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from deployctl.adapters.aws import AwsSession
from deployctl.config import load

DEV = "234567890123"
PROD = "345678901234"
READER = f"arn:aws:iam::{DEV}:role/deployctl-ci/deployctl-dev-reader"
CONFIG = f"""
[tool.deployctl]
[tool.deployctl.environments.dev]
aws = {{ region = "us-east-1", account_id = "{DEV}", role_arn = "{READER}", endpoint_url = "http://127.0.0.1:9" }}
terraform = {{ root = "tf", backend = {{ bucket = "acme-api-tfstate-dev", key = "dev/terraform.tfstate", region = "us-east-1" }} }}
"""
ASSUMED = {
    "Credentials": {
        "AccessKeyId": "ASIAASSUMEDASSUMED12",
        "SecretAccessKey": "assumed-secret-assumed-secret",
        "SessionToken": "assumed-session-token",
        "Expiration": "2030-01-01T00:00:00Z",
    }
}


@pytest.fixture
def _caller_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIACALLERCALLER1234")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "caller-secret-caller-secret")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def _session(tmp_path: Path, stubber_sts: Any) -> AwsSession:
    (tmp_path / "pyproject.toml").write_text(CONFIG)
    env = load(tmp_path / "pyproject.toml").settings.environments["dev"]

    class StubbedSts(boto3.Session):
        def client(self, service: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            if service == "sts":
                return stubber_sts
            parent: Any = super()
            return parent.client(service, *args, **kwargs)

    return AwsSession("dev", env, base=lambda: StubbedSts(region_name="us-east-1"))


def _identity(account: str) -> dict[str, str]:
    return {"UserId": "AROAEXAMPLE:job", "Account": account, "Arn": f"arn:aws:sts::{account}:assumed-role/x/job"}


@pytest.mark.usefixtures("_caller_keys")
def test_a_caller_in_the_environments_account_keeps_its_own_credentials(tmp_path: Path) -> None:
    """dev's own CI roles (OIDC, in dev's account) deploy and plan dev with their own permissions: never chained
    into the read-only reader role. The Stubber has no AssumeRole answer: an AssumeRole would fail the test."""
    sts = boto3.client("sts", region_name="us-east-1")
    stubber = Stubber(sts)
    stubber.add_response("get_caller_identity", _identity(DEV), {})
    aws = _session(tmp_path, sts)
    with stubber:
        s3 = aws.client("s3")
        credentials = aws.credentials_env()
        stubber.assert_no_pending_responses()
    assert s3._request_signer._credentials.access_key == "ASIACALLERCALLER1234"
    assert "AWS_ACCESS_KEY_ID" not in credentials, "terraform runs with the caller's own credentials"
    assert aws.secrets() == []


@pytest.mark.usefixtures("_caller_keys")
def test_a_caller_from_another_account_assumes_the_role_once(tmp_path: Path) -> None:
    """prod's deploy role (prod's account) promoting from dev reads dev's evidence through dev's reader role."""
    sts = boto3.client("sts", region_name="us-east-1")
    stubber = Stubber(sts)
    stubber.add_response("get_caller_identity", _identity(PROD), {})
    stubber.add_response("assume_role", ASSUMED, {"RoleArn": READER, "RoleSessionName": "deployctl"})
    aws = _session(tmp_path, sts)
    with stubber:
        s3 = aws.client("s3")
        aws.client("eks")
        credentials = aws.credentials_env()
        stubber.assert_no_pending_responses()
    assert s3._request_signer._credentials.access_key == "ASIAASSUMEDASSUMED12"
    assert credentials["AWS_ACCESS_KEY_ID"] == "ASIAASSUMEDASSUMED12"
    assert "assumed-session-token" in aws.secrets()
