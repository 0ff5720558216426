"""AWS access: one AssumeRole per environment per command, and every AWS failure a user can cause
as a one-line error with a documented exit code and the fix."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
    TokenRetrievalError,
)
from botocore.stub import Stubber

from deployctl.adapters import aws_errors, eks
from deployctl.adapters.aws import AwsSession
from deployctl.adapters.aws_errors import translate
from deployctl.app.context import EnvContext
from deployctl.cli.main import main
from deployctl.config import load
from deployctl.console import Console
from deployctl.core.errors import ExitCode, UsageError
from deployctl.ledger.entry import Entry
from deployctl.runner import ProcessRunner

ROLE = "arn:aws:iam::123456789012:role/deployctl-dev"
CONFIG = """
[tool.deployctl]
[tool.deployctl.apps.api]
chart = "charts/api"
release = "api"
image = {{ registry = "123456789012.dkr.ecr.us-east-1.amazonaws.com", repository = "api" }}

[tool.deployctl.environments.dev]
aws = {{ region = "us-east-1", endpoint_url = "{endpoint}"{role} }}
terraform = {{ root = "tf", backend = {{ bucket = "acme-tfstate", key = "dev/terraform.tfstate", region = "us-east-1" }} }}
"""


def write_config(tmp_path: Path, endpoint: str, role: str | None = None) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text(CONFIG.format(endpoint=endpoint, role=f', role_arn = "{role}"' if role else ""))
    return path


@pytest.fixture
def _fake_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKEFAKE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-secret-fake-secret")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.mark.usefixtures("_fake_keys")
def test_one_assume_role_per_environment_per_command(tmp_path: Path) -> None:
    """Everything deploy and promote reach (lock, ledger, ECR, EKS token, terraform's credentials) comes
    from one session: botocore's Stubber has exactly one AssumeRole answer queued, a second call fails."""
    base = boto3.Session(region_name="us-east-1")
    sts = base.client("sts", region_name="us-east-1")
    stubber = Stubber(sts)
    stubber.add_response(
        "assume_role",
        {
            "Credentials": {
                "AccessKeyId": "ASIAASSUMEDASSUMED12",
                "SecretAccessKey": "assumed-secret-assumed-secret",
                "SessionToken": "assumed-session-token",
                "Expiration": "2030-01-01T00:00:00Z",
            }
        },
        {"RoleArn": ROLE, "RoleSessionName": "deployctl"},
    )
    calls: list[str] = []

    class OneStsBase(boto3.Session):
        def client(self, service: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            if service == "sts":
                calls.append("sts")
                return sts
            parent: Any = super()
            return parent.client(service, *args, **kwargs)

    config = load(write_config(tmp_path, "http://127.0.0.1:9", ROLE))
    env = config.settings.environments["dev"]
    aws = AwsSession("dev", env, base=lambda: OneStsBase(region_name="us-east-1"))
    ctx = EnvContext(config, "dev", ProcessRunner(), Console(), aws=aws)
    with stubber:
        s3_lock = ctx.lock._s3  # the client the lock writes with
        s3_ledger = ctx.ledger._s3
        ecr = ctx.aws.client("ecr")
        token = eks.token(ctx.aws, "api-dev")
        credentials = ctx.aws.credentials_env()
        ctx.aws.client("s3")
        stubber.assert_no_pending_responses()
    assert calls == ["sts"], "one base STS client, one AssumeRole"
    assert s3_lock is s3_ledger, "one S3 client for lock and ledger"
    assert ecr._request_signer._credentials.access_key == "ASIAASSUMEDASSUMED12"
    assert credentials["AWS_ACCESS_KEY_ID"] == "ASIAASSUMEDASSUMED12"
    assert credentials["AWS_SESSION_TOKEN"] == "assumed-session-token"
    assert token.startswith("k8s-aws-v1.")
    assert set(ctx.aws.secrets()) == {"ASIAASSUMEDASSUMED12", "assumed-secret-assumed-secret", "assumed-session-token"}


def test_threads_share_the_environments_one_session_ledger_and_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The apps of a `needs` level roll out from threads, each reaching the context first: what the context
    builds on first use is built once. A slow AwsSession constructor widens the race a missing guard would lose."""
    built: list[int] = []

    class SlowSession(AwsSession):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            built.append(threading.get_ident())
            time.sleep(0.05)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr("deployctl.app.context.base.AwsSession", SlowSession)
    ctx = EnvContext(load(write_config(tmp_path, "http://127.0.0.1:9")), "dev", ProcessRunner(), Console())
    start = threading.Barrier(8)
    seen: list[tuple[int, int, int]] = []

    def first_use() -> None:
        start.wait(timeout=10)
        seen.append((id(ctx.aws), id(ctx.ledger), id(ctx.lock)))

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(built) == 1, "one AwsSession (one AssumeRole) for every thread"
    assert len(seen) == 8 and len(set(seen)) == 1, "one session, one ledger, one lock"


def client_error(code: str, operation: str = "PutObject", status: int = 400, message: str = "nope") -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, operation)


# (exception, exit code, words in the message, words in the hint)
CASES: list[tuple[BaseException, ExitCode, str, str]] = [
    (NoCredentialsError(), ExitCode.USAGE, "no usable AWS credentials", "aws sso login"),
    (TokenRetrievalError(provider="sso", error_msg="token expired"), ExitCode.USAGE, "expired", "aws sso login"),
    (client_error("ExpiredToken"), ExitCode.USAGE, "expired or invalid (ExpiredToken)", "refresh"),
    (client_error("ExpiredTokenException", "DescribeImages"), ExitCode.USAGE, "ExpiredTokenException", "refresh"),
    (
        client_error("AccessDenied", "PutObject", 403, "Access Denied"),
        ExitCode.USAGE,
        "access denied PutObject (AccessDenied): Access Denied",
        "grant",
    ),
    (
        client_error(
            "AccessDeniedException", "PutImage", 400, "User: arn:x is not authorized to perform: ecr:PutImage"
        ),
        ExitCode.USAGE,
        "ecr:PutImage",
        "role",
    ),
    (client_error("ThrottlingException", "DescribeImages"), ExitCode.FAILED, "throttled DescribeImages", "re-run"),
    (
        EndpointConnectionError(endpoint_url="https://s3.us-east-1.amazonaws.com"),
        ExitCode.FAILED,
        "AWS endpoint s3.us-east-1.amazonaws.com not reachable: could not connect, 3 tries",
        "network",
    ),
    (
        ReadTimeoutError(endpoint_url="http://127.0.0.1:5000/acme-tfstate/deployctl/locks/dev.json", error="x"),
        ExitCode.FAILED,
        "AWS endpoint 127.0.0.1:5000 not answering: no answer within 6 s, 3 tries "
        "(http://127.0.0.1:5000/acme-tfstate/deployctl/locks/dev.json)",
        "gives up after about 21 s",
    ),
    (
        ConnectTimeoutError(endpoint_url="https://sts.amazonaws.com/"),
        ExitCode.FAILED,
        "AWS endpoint sts.amazonaws.com not answering: no connection within 3 s",
        "endpoint_url",
    ),
]


@pytest.mark.parametrize(
    ("exc", "code", "message", "hint"), CASES, ids=[type(c[0]).__name__ + str(i) for i, c in enumerate(CASES)]
)
def test_translate(exc: BaseException, code: ExitCode, message: str, hint: str) -> None:
    error = translate(exc, "write the lock of dev")
    assert error.exit_code == code
    assert message in error.message
    assert error.message.startswith("write the lock of dev: ")
    assert "\n" not in error.message
    assert error.hint is not None and hint in error.hint


class _RefusingS3(http.server.BaseHTTPRequestHandler):
    """Answers every S3 call the way AWS answers an expired session token or a denied call. moto accepts
    any credentials, so it cannot produce these: an injected failure, by design."""

    status = 400
    code = "ExpiredToken"

    def _answer(self) -> None:
        body = f"<Error><Code>{self.code}</Code><Message>refused by the test</Message></Error>".encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _answer  # noqa: N815 (http.server's handler names)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(params=[(400, "ExpiredToken", "expired or invalid"), (403, "AccessDenied", "access denied")])
def refusing_s3(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    status, code, words = request.param
    handler = type("Handler", (_RefusingS3,), {"status": status, "code": code})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", words
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.usefixtures("_fake_keys")
def test_cli_refused_credentials_exit_2_one_line(
    tmp_path: Path, refusing_s3: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint, words = refusing_s3
    config = write_config(tmp_path, endpoint)
    code = main(["--config", str(config), "lock", "status", "dev"])
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE
    assert words in err
    assert "read the lock of dev (s3://acme-tfstate/deployctl/locks/dev.json)" in err
    assert "internal error" not in err and "Traceback" not in err
    assert err.count("\n") == 2, err  # one error line, one hint line


def test_cli_missing_credentials_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    config = write_config(tmp_path, "http://127.0.0.1:9")
    code = main(["--config", str(config), "history", "dev"])
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE
    assert "no usable AWS credentials" in err
    assert "hint: configure credentials" in err
    assert "internal error" not in err and "Traceback" not in err


@pytest.mark.usefixtures("_fake_keys")
def test_failed_ledger_write_names_the_store(tmp_path: Path, refusing_s3: tuple[str, str]) -> None:
    endpoint, words = refusing_s3
    config = load(write_config(tmp_path, endpoint))
    ctx = EnvContext(config, "dev", ProcessRunner(), Console())
    with pytest.raises(UsageError) as caught:
        ctx.record(Entry(env="dev", app="api", action="deploy", outcome="succeeded"))
    assert words in str(caught.value)
    assert "record deploy in the history of dev (s3://acme-tfstate)" in str(caught.value)


@pytest.mark.usefixtures("_fake_keys")
def test_every_client_has_short_tries_and_few_of_them(tmp_path: Path) -> None:
    aws = AwsSession("dev", load(write_config(tmp_path, "http://127.0.0.1:9")).settings.environments["dev"])
    for service in ("s3", "ecr", "eks", "sts"):
        config = aws.client(service).meta.config
        assert (config.connect_timeout, config.read_timeout) == (3, 6), service
        assert config.retries == {"total_max_attempts": 3, "mode": "standard"}, service


@pytest.fixture
def silent_s3() -> Iterator[str]:
    """An S3 endpoint that accepts connections and never answers (a hung endpoint: an injected failure;
    tests/lab/test_hung_dependencies.py stops a real moto with SIGSTOP)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                accepted.append(server.accept()[0])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()


@pytest.mark.usefixtures("_fake_keys")
def test_cli_hung_aws_endpoint_exit_1_naming_it_with_each_retry_said(
    tmp_path: Path, silent_s3: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(aws_errors, "READ_TIMEOUT", 0.5)  # the same path as the default 6 s, quicker
    config = write_config(tmp_path, silent_s3)
    started = time.monotonic()
    code = main(["--config", str(config), "lock", "status", "dev"])
    took = time.monotonic() - started
    err = capsys.readouterr().err
    host = silent_s3.removeprefix("http://")
    assert code == ExitCode.FAILED, err
    assert took < 3 * 0.5 + 3 + 2, took
    assert err.splitlines() == [
        f"AWS endpoint {host} not answering, retry 2/3: S3 GetObject (no answer within 0.5 s)",
        f"AWS endpoint {host} not answering, retry 3/3: S3 GetObject (no answer within 0.5 s)",
        "error: read the lock of dev (s3://acme-tfstate/deployctl/locks/dev.json): AWS endpoint "
        f"{host} not answering: no answer within 0.5 s, 3 tries ({silent_s3}/acme-tfstate/deployctl/locks/dev.json)",
        "hint: check the network, the region and aws.endpoint_url (or the AWS status page), then re-run; "
        "an AWS call gives up after about 21 s",
    ]
