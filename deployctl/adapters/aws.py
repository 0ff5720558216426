"""AWS for one environment: one session per command (one AssumeRole), and AWS errors as user errors.

boto3 is imported inside the methods so that importing this module is free
(``deployctl --help`` must not import boto3).

Every client connects within ``CONNECT_TIMEOUT`` seconds, waits at most ``READ_TIMEOUT`` seconds for an
answer and tries ``MAX_ATTEMPTS`` times (botocore's standard mode: timeouts, resets and throttling are
retried with jittered backoff). botocore has no total deadline, so the tries are few and short: a hung
endpoint fails one call within ``CALL_BOUND`` seconds, each retry said on stderr.
"""

from __future__ import annotations

import logging
import os
import threading
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from deployctl.config import Environment
from deployctl.core.errors import DeployctlError, OperationError, UsageError

if TYPE_CHECKING:
    import boto3

log = logging.getLogger(__name__)

SESSION_NAME = "deployctl"
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


class AwsSession:
    """The AWS session of one environment for one command: the role is assumed once, on first use,
    and every client comes from that one session (bound to the environment's endpoint).

    ``aws.role_arn`` with ``aws.account_id`` (one AWS account per environment) is the way into the environment from
    another account: a caller already in ``account_id`` (its own OIDC role in CI) keeps its credentials, one from
    elsewhere (prod's deploy role reading dev's evidence) assumes the role."""

    def __init__(self, env_name: str, env: Environment, *, base: Callable[[], boto3.Session] | None = None) -> None:
        self.env_name = env_name
        self.env = env
        self._base = base
        self._session: boto3.Session | None = None
        self._assumed = False  # whether the session is role_arn's (not the caller's own credentials)
        self._clients: dict[str, Any] = {}
        self._guard = threading.Lock()  # the rollout watch and blob copies use clients from threads

    def session(self) -> boto3.Session:
        with self._guard:
            if self._session is None:
                self._session = self._assume()
            return self._session

    def client(self, service: str) -> Any:
        """A client for ``service`` bound to the environment's endpoint (moto in the sandbox), cached."""
        session = self.session()
        with self._guard:
            if service not in self._clients:
                chosen: Any = session  # Any: boto3-stubs overloads client() per literal service name
                client = chosen.client(service, endpoint_url=self.env.aws.endpoint_url, config=client_config())
                say_retries(client)
                self._clients[service] = client
            return self._clients[service]

    def credentials_env(self) -> dict[str, str]:
        """The session's credentials as the variables a child process (terraform) reads."""
        values: dict[str, str] = {}
        if self.env.aws.profile:
            values["AWS_PROFILE"] = self.env.aws.profile
        if self.env.aws.role_arn is None:
            return values
        session = self.session()
        if not self._assumed:  # already in the environment's account: terraform uses the same credentials chain
            return values
        credentials = session.get_credentials()
        if credentials is None:
            raise UsageError(
                f"no AWS credentials for {self.env_name} after assuming {self.env.aws.role_arn}",
                "check `aws sts get-caller-identity`",
            )
        frozen = credentials.get_frozen_credentials()
        values.update({"AWS_ACCESS_KEY_ID": frozen.access_key or "", "AWS_SECRET_ACCESS_KEY": frozen.secret_key or ""})
        if frozen.token:
            values["AWS_SESSION_TOKEN"] = frozen.token
        values["AWS_PROFILE"] = ""  # the assumed role's keys win over any profile
        return values

    def secrets(self) -> list[str]:
        """Credential values to register with the redactor (empty when no role was assumed)."""
        if self.env.aws.role_arn is None or self._session is None or not self._assumed:
            return []
        credentials = self._session.get_credentials()
        if credentials is None:
            return []
        frozen = credentials.get_frozen_credentials()
        return [s for s in (frozen.access_key, frozen.secret_key, frozen.token) if s]

    def _assume(self) -> boto3.Session:
        import boto3

        base = self._base() if self._base is not None else None
        if base is None:
            base = boto3.Session(profile_name=self.env.aws.profile, region_name=self.env.aws.region)
        role = self.env.aws.role_arn
        if role is None:
            return base
        sts: Any = base.client(
            "sts", endpoint_url=self.env.aws.endpoint_url, region_name=self.env.aws.region, config=client_config()
        )
        say_retries(sts)
        if self.env.aws.account_id is not None and self._caller_account(sts) == self.env.aws.account_id:
            log.debug("%s: already in account %s: %s not assumed", self.env_name, self.env.aws.account_id, role)
            return base
        try:
            credentials = sts.assume_role(
                RoleArn=role, RoleSessionName=os.environ.get("GITHUB_RUN_ID", SESSION_NAME)[:64]
            )["Credentials"]
        except errors() as exc:
            raise translate(exc, f"assume role {role} for {self.env_name}") from None
        self._assumed = True
        return boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=self.env.aws.region,
        )

    def _caller_account(self, sts: Any) -> str:
        """The account of the credentials deployctl was started with (``sts:GetCallerIdentity``: never denied)."""
        try:
            return str(sts.get_caller_identity()["Account"])
        except errors() as exc:
            raise translate(exc, f"check which AWS account the credentials for {self.env_name} are in") from None


class RegionalSession(AwsSession):
    """``parent``'s session (its credentials: the role is not assumed again) with clients in another region."""

    def __init__(self, parent: AwsSession, region: str) -> None:
        super().__init__(parent.env_name, parent.env)
        self._parent = parent
        self._region = region

    def session(self) -> Any:
        return self._parent.session()

    def credentials_env(self) -> dict[str, str]:
        return self._parent.credentials_env()

    def secrets(self) -> list[str]:
        return self._parent.secrets()

    def client(self, service: str) -> Any:
        chosen: Any = self.session()  # Any: boto3-stubs overloads client() per literal service name
        with self._guard:
            if service not in self._clients:
                client = chosen.client(
                    service, region_name=self._region, endpoint_url=self.env.aws.endpoint_url, config=client_config()
                )
                say_retries(client)
                self._clients[service] = client
            return self._clients[service]


def client_config() -> Any:
    """The botocore ``Config`` of every deployctl client: short tries, few of them (see the module doc)."""
    from botocore.config import Config

    return Config(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"},
    )


def say_retries(client: Any) -> None:
    """Say on stderr (a WARNING of this module's logger) each retry of a call that got no answer, so a hung
    endpoint is never waited on silently. botocore decides the retry; this only reports it."""

    def report(attempts: int = 0, caught_exception: BaseException | None = None, **kwargs: Any) -> None:
        if caught_exception is None or attempts >= MAX_ATTEMPTS:
            return
        name = type(caught_exception).__name__
        if name not in SILENT + UNREACHABLE:
            return
        operation = getattr(kwargs.get("operation"), "name", "request")
        service = client.meta.service_model.service_id
        endpoint = _host(str(getattr(kwargs.get("endpoint"), "host", "") or client.meta.endpoint_url))
        log.warning(
            "AWS endpoint %s %s, retry %d/%d: %s %s (%s)",
            endpoint,
            "not answering" if name in SILENT else "not reachable",
            attempts + 1,
            MAX_ATTEMPTS,
            service,
            operation,
            _why(caught_exception),
        )

    client.meta.events.register("needs-retry", report)


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
            f"{what}AWS endpoint {_host(url) or '(unknown)'} {state}: {_why(exc)}, {MAX_ATTEMPTS} tries"
            + (f" ({url})" if url else ""),
            "check the network, the region and aws.endpoint_url (or the AWS status page), then re-run; "
            f"an AWS call gives up after about {CALL_BOUND} s",
            details={"dependency": f"AWS endpoint {_host(url)}".strip(), "dependency_state": state, "url": url},
        )
    return OperationError(f"{what}AWS {operation or 'request'} failed: {_first_line(exc)}")


def _host(url: str) -> str:
    """``host:port`` of an endpoint URL (the whole text when it is not a URL)."""
    return urllib.parse.urlsplit(url).netloc or url


def _why(exc: BaseException) -> str:
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
