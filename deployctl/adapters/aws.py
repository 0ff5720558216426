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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from deployctl.adapters import aws_errors as bounds  # read when used: tests shorten the timeouts
from deployctl.adapters.aws_errors import (
    SILENT,
    UNREACHABLE,
    errors,
    host_of,
    translate,
    why,
)
from deployctl.config import Environment
from deployctl.core.errors import UsageError

if TYPE_CHECKING:
    import boto3

log = logging.getLogger(__name__)

SESSION_NAME = "deployctl"


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
        connect_timeout=bounds.CONNECT_TIMEOUT,
        read_timeout=bounds.READ_TIMEOUT,
        retries={"total_max_attempts": bounds.MAX_ATTEMPTS, "mode": "standard"},
    )


def say_retries(client: Any) -> None:
    """Say on stderr (a WARNING of this module's logger) each retry of a call that got no answer, so a hung
    endpoint is never waited on silently. botocore decides the retry; this only reports it."""

    def report(attempts: int = 0, caught_exception: BaseException | None = None, **kwargs: Any) -> None:
        if caught_exception is None or attempts >= bounds.MAX_ATTEMPTS:
            return
        name = type(caught_exception).__name__
        if name not in SILENT + UNREACHABLE:
            return
        operation = getattr(kwargs.get("operation"), "name", "request")
        service = client.meta.service_model.service_id
        endpoint = host_of(str(getattr(kwargs.get("endpoint"), "host", "") or client.meta.endpoint_url))
        log.warning(
            "AWS endpoint %s %s, retry %d/%d: %s %s (%s)",
            endpoint,
            "not answering" if name in SILENT else "not reachable",
            attempts + 1,
            bounds.MAX_ATTEMPTS,
            service,
            operation,
            why(caught_exception),
        )

    client.meta.events.register("needs-retry", report)
