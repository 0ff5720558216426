"""AWS calls' bounds and errors: botocore's exceptions and error codes turned into one line with a fix and a
documented exit code."""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING

from deployctl.core.errors import DeployctlError, OperationError, UsageError

if TYPE_CHECKING:
    pass


CONNECT_TIMEOUT = 3


READ_TIMEOUT = 6


MAX_ATTEMPTS = 3  # tries in all, the first included (botocore standard mode)


# About the longest one call waits on an endpoint that accepts and never answers: every try's read
# timeout plus the standard mode's jittered backoff between tries (at most 1 s, then 2 s).
CALL_BOUND = MAX_ATTEMPTS * READ_TIMEOUT + 3


SILENT = ("ReadTimeoutError", "ConnectTimeoutError")


UNREACHABLE = ("EndpointConnectionError", "ConnectionClosedError", "ProxyConnectionError")


# Error codes AWS services use for each class of problem the user can fix.
EXPIRED_CODES = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired", "InvalidClientTokenId"}
)


DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException", "Forbidden"}
)


THROTTLED_CODES = frozenset(
    {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded", "SlowDown"}
)


def errors() -> tuple[type[Exception], ...]:
    """What a botocore call raises (imported here: botocore is not loaded for ``--help``)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def is_error(exc: BaseException, *codes: str) -> bool:
    """Whether ``exc`` is a botocore ClientError with one of ``codes`` (error code or HTTP status)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    status = str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return code in codes or status in codes


def is_aws_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith(("botocore", "boto3"))


def translate(exc: BaseException, doing: str = "") -> DeployctlError:
    """The user-facing error for an AWS failure: a documented exit code, one line, a hint that names the fix.

    Missing, expired or rejected credentials are the user's to fix (exit 2); throttling that outlived
    the retries and unreachable endpoints are operational failures (exit 1).
    """
    if isinstance(exc, DeployctlError):
        return exc
    name = type(exc).__name__
    what = f"{doing}: " if doing else ""
    if name in ("NoCredentialsError", "PartialCredentialsError", "ProfileNotFound", "NoRegionError"):
        return UsageError(
            f"{what}no usable AWS credentials ({_first_line(exc)})",
            "configure credentials: `aws configure sso` / `aws sso login`, AWS_PROFILE, or in CI "
            "aws-actions/configure-aws-credentials with OIDC",
        )
    if name in ("TokenRetrievalError", "SSOTokenLoadError", "UnauthorizedSSOTokenError", "CredentialRetrievalError"):
        return UsageError(
            f"{what}AWS credentials expired or could not be refreshed ({_first_line(exc)})",
            "refresh them (`aws sso login`, or re-run the CI job so it assumes the role again), then re-run",
        )
    code = _code(exc)
    operation = str(getattr(exc, "operation_name", "") or "")
    if code in EXPIRED_CODES:
        return UsageError(
            f"{what}AWS credentials expired or invalid ({code})",
            "refresh them (`aws sso login`, or re-run the CI job so it assumes the role again), then re-run",
        )
    if code in DENIED_CODES or (code == "" and _status(exc) == 403):
        action = f" {operation}" if operation else ""
        return UsageError(
            f"{what}access denied{action} ({code or 'HTTP 403'}): {_message(exc)}",
            "grant the environment's role that action on that resource (or use the role that has it: "
            "environments.NAME.aws.role_arn)",
        )
    if code in THROTTLED_CODES:
        return OperationError(
            f"{what}AWS throttled {operation or 'the request'} after retries ({code})",
            "re-run in a minute; if it persists, ask for a higher API rate limit",
        )
    if name in SILENT + UNREACHABLE:
        url = str(getattr(exc, "kwargs", {}).get("endpoint_url", "") or "")
        state = "not answering" if name in SILENT else "not reachable"
        return OperationError(
            f"{what}AWS endpoint {host_of(url) or '(unknown)'} {state}: {why(exc)}, {MAX_ATTEMPTS} tries"
            + (f" ({url})" if url else ""),
            "check the network, the region and aws.endpoint_url (or the AWS status page), then re-run; "
            f"an AWS call gives up after about {CALL_BOUND} s",
            details={"dependency": f"AWS endpoint {host_of(url)}".strip(), "dependency_state": state, "url": url},
        )
    return OperationError(f"{what}AWS {operation or 'request'} failed: {_first_line(exc)}")


def host_of(url: str) -> str:
    """``host:port`` of an endpoint URL (the whole text when it is not a URL)."""
    return urllib.parse.urlsplit(url).netloc or url


def why(exc: BaseException) -> str:
    """Why a call failed, in a few words (no answer within the read timeout, no connection, or its own message)."""
    name = type(exc).__name__
    if name == "ReadTimeoutError":
        return f"no answer within {READ_TIMEOUT} s"
    if name == "ConnectTimeoutError":
        return f"no connection within {CONNECT_TIMEOUT} s"
    if name == "ConnectionClosedError":
        return "the connection was closed without an answer"
    return "could not connect"


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def _status(exc: BaseException) -> int:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return 0
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _message(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        message = str(response.get("Error", {}).get("Message", ""))
        if message:
            return message
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
