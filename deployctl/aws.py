"""AWS sessions for an environment: region, endpoint (the sandbox's moto), profile, role.

boto3 is imported inside the functions so that importing this module is free
(``deployctl --help`` must not import boto3).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from deployctl.config import Environment
from deployctl.errors import OperationError

if TYPE_CHECKING:
    import boto3

SESSION_NAME = "deployctl"


def session(env: Environment) -> boto3.Session:
    """A boto3 session for ``env``: its profile, then its role assumed when set."""
    import boto3
    import botocore.exceptions

    base = boto3.Session(profile_name=env.aws.profile, region_name=env.aws.region)
    if env.aws.role_arn is None:
        return base
    sts = base.client("sts", endpoint_url=env.aws.endpoint_url)
    try:
        credentials = sts.assume_role(
            RoleArn=env.aws.role_arn,
            RoleSessionName=os.environ.get("GITHUB_RUN_ID", SESSION_NAME)[:64],
        )["Credentials"]
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise OperationError(
            f"cannot assume role {env.aws.role_arn}: {exc}",
            "check the role's trust policy and your base credentials (`aws sts get-caller-identity`)",
        ) from None
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=env.aws.region,
    )


def client(env: Environment, service: str, aws_session: boto3.Session | None = None) -> Any:
    """A client for ``service`` bound to the environment's endpoint (moto in the sandbox)."""
    from botocore.config import Config

    retry = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=30)
    chosen: Any = aws_session or session(env)  # Any: boto3-stubs overloads client() per literal service name
    return chosen.client(service, endpoint_url=env.aws.endpoint_url, config=retry)


def is_error(exc: BaseException, *codes: str) -> bool:
    """Whether ``exc`` is a botocore ClientError with one of ``codes`` (error code or HTTP status)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    status = str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return code in codes or status in codes
