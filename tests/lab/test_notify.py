"""Webhook notifications over real HTTP: a local server started by the test receives what ``EnvContext.announce``
sends (the path every use case takes): the payloads of both formats, a 500 then a success, a dead endpoint that
only warns, and the URL (a secret) absent from everything printed."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from deployctl.app import promote as promote_app
from deployctl.app.deploy import deploy
from deployctl.app.steps.freeze import require_window
from deployctl.config import load
from deployctl.console import Console
from deployctl.core.errors import OperationError
from deployctl.notify.events import Event
from deployctl.promotion.request import PromoteRequest
from deployctl.rollout.states import Verdict
from deployctl.runner import ProcessRunner
from tests import values_files
from tests.unit import test_use_cases as use_cases
from tests.unit.fakes import FakeContext, FakeS3

pytestmark = pytest.mark.lab

SECRET_PATH = "/services/T000/B000/XXXXsecretXXXX"
DIGEST = "sha256:" + "c" * 64
CONFIG = """
[tool.deployctl.apps.api]
chart = "charts/api"
release = "api"
image = { registry = "registry.example:5000", repository = "api" }

[tool.deployctl.environments.prod]
aws = { region = "us-east-1" }
terraform = { root = "tf", backend = { bucket = "acme-tfstate", key = "prod/terraform.tfstate", region = "us-east-1" } }
cluster = { kubeconfig = "kubeconfig" }
namespace = "api"
values = "values-prod.yaml"
freeze = { weekly = { always = "mon 00:00 - sun 23:59" } }
notify = [
  { url_env = "TEST_HOOK_JSON" },
  { url_env = "TEST_HOOK_SLACK", format = "slack", events = ["promote-failed", "freeze-overridden"] },
]
"""


@dataclass
class Receiver:
    """A webhook receiver: answers each POST with the next scripted status (then 200), keeps the bodies."""

    statuses: list[int] = field(default_factory=list)
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server calls it by this name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            found.received.append((self.path, json.loads(body)))
            status = found.statuses.pop(0) if found.statuses else 200
            self.send_response(status)
            self.end_headers()

        def log_message(self, *_: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    found.url = f"http://127.0.0.1:{server.server_address[1]}{SECRET_PATH}"
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def context(tmp_path: Path) -> tuple[FakeContext, Console]:
    (tmp_path / "pyproject.toml").write_text(CONFIG)
    console = Console(out=io.StringIO(), err=io.StringIO(), color=False)
    runner = ProcessRunner(redactor=console.redactor)
    ctx = FakeContext(load(tmp_path / "pyproject.toml"), "prod", runner, s3=FakeS3())
    ctx.reporter = console  # the real console: what a user sees, redacted
    return ctx, console


def printed(console: Console) -> str:
    assert isinstance(console.out, io.StringIO) and isinstance(console.err, io.StringIO)
    return console.out.getvalue() + console.err.getvalue()


def dead_url() -> str:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{SECRET_PATH}"


FAILED = Event(
    "promote-failed",
    "prod",
    "release-0.1.1 did not roll out in prod",
    release="release-0.1.1",
    apps=(("api", DIGEST),),
    changelog_url="https://github.com/acme/api/compare/aaa...bbb",
    verdict="failed",
    failure="rollout of api to prod failed: CrashLoopBackOff",
)


def test_both_formats_are_posted_after_a_500_the_retry_succeeds(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_HOOK_JSON", receiver.url)
    monkeypatch.setenv("TEST_HOOK_SLACK", receiver.url + "/slack")
    monkeypatch.setenv("GITHUB_RUN_ID", "4242")
    receiver.statuses = [500]  # the JSON target's first attempt
    ctx, console = context(tmp_path)

    started = time.monotonic()
    deliveries = ctx.announce(FAILED)

    assert [(d.target, d.delivered, d.attempts, d.status) for d in deliveries] == [
        ("TEST_HOOK_JSON", True, 2, 200),
        ("TEST_HOOK_SLACK", True, 1, 200),
    ]
    assert 1.0 <= time.monotonic() - started < 10, "one backoff of ~1 s before the retry"
    (path1, first), (path2, retried), (slack_path, slack) = receiver.received
    assert path1 == path2 == SECRET_PATH and first == retried
    assert first["event"] == "promote-failed" and first["release"] == "release-0.1.1"
    assert first["apps"] == [{"app": "api", "digest": DIGEST}]
    assert first["changelog_url"] == "https://github.com/acme/api/compare/aaa...bbb"
    assert (first["verdict"], first["failure"], first["ci_run"]) == (
        "failed",
        "rollout of api to prod failed: CrashLoopBackOff",
        "4242",
    )
    assert slack_path == SECRET_PATH + "/slack"
    assert slack["text"].startswith("prod: promotion FAILED release-0.1.1")
    assert "CrashLoopBackOff" in slack["blocks"][0]["text"]["text"]
    assert printed(console) == "", "delivered: nothing to say"
    assert SECRET_PATH not in ctx.runner.redactor(f"POST {receiver.url} failed"), "the URL is registered as a secret"


def test_a_dead_endpoint_warns_and_never_fails_the_command_and_the_url_is_never_shown(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = dead_url()
    monkeypatch.setenv("TEST_HOOK_JSON", dead)
    monkeypatch.setenv("TEST_HOOK_SLACK", receiver.url)
    ctx, console = context(tmp_path)

    # The environment is frozen around the clock: the override proceeds, is recorded, and is announced.
    override = require_window(ctx, "promote", "hotfix for INC-7", now=datetime(2026, 11, 18, 12, tzinfo=UTC))

    assert override is not None and override.reason == "hotfix for INC-7"
    (recorded,) = ctx.entries()
    assert recorded.action == "override" and recorded.overrides == (override,)
    [(_, slack)] = receiver.received  # the live target got it
    assert "freeze overridden" in slack["text"] and "hotfix for INC-7" in slack["blocks"][0]["text"]["text"]
    text = printed(console)
    assert "warning: freeze-overridden: notification to $TEST_HOOK_JSON not delivered: no answer (" in text
    assert "after 3 attempts" in text
    for secret in (dead, receiver.url, SECRET_PATH, "XXXXsecretXXXX"):
        assert secret not in text


def test_a_promotion_and_a_failed_deploy_reach_a_real_receiver(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The use cases' own announcements (not a hand-made event): promote-succeeded from ``promote`` and
    deploy-failed from ``deploy``, each with its environment, release, apps and digests, verdict and failure."""
    hook = '\nnotify = [{ url_env = "TEST_HOOK_JSON", events = ["promote-succeeded", "deploy-failed"] }]\n'
    monkeypatch.setenv("TEST_HOOK_JSON", receiver.url)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pyproject.toml").write_text(
        use_cases.CONFIG.replace("lock_timeout_seconds = 0", f"lock_timeout_seconds = 0{hook}")
    )
    for name in ("values-dev.yaml", "values-prod.yaml"):
        (repo / name).write_text(values_files.reference(name))
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/api")
    contexts, _, _ = use_cases.promote_world(repo, monkeypatch)
    prod, dev = contexts["prod"], contexts["dev"]
    assert isinstance(prod, FakeContext) and isinstance(dev, FakeContext)
    commit = use_cases.git(repo, "rev-parse", "HEAD")

    result = promote_app.promote(contexts, PromoteRequest("release-1.0.0"))
    assert result.outcome == "succeeded" and prod.fake_cluster.serving == {"api": use_cases.DIGEST}
    ((path, promoted),) = receiver.received
    assert path == SECRET_PATH
    assert {k: promoted[k] for k in ("schema", "event", "env", "release", "apps", "verdict", "failure")} == {
        "schema": "deployctl/notify/v1",
        "event": "promote-succeeded",
        "env": "prod",
        "release": "release-1.0.0",
        "apps": [{"app": "api", "digest": use_cases.DIGEST}],
        "verdict": "healthy",
        "failure": None,
    }
    assert promoted["summary"] == "release-1.0.0 promoted to prod"
    assert promoted["changelog_url"] == f"https://github.com/acme/api/commit/{commit}"

    dev.fake_cluster.verdict = Verdict("failed", "pod api-2 container api: CrashLoopBackOff").diagnosed(["log: boom"])
    with pytest.raises(OperationError):
        deploy(dev, digest=use_cases.DIGEST)
    (_, failed) = receiver.received[1]
    assert (failed["event"], failed["env"], failed["verdict"]) == ("deploy-failed", "dev", "failed")
    assert failed["apps"] == [{"app": "api", "digest": use_cases.DIGEST}]
    assert failed["failure"] == "rollout of api to dev failed: pod api-2 container api: CrashLoopBackOff"
    assert dev.entries()[0].outcome == "failed" and len(receiver.received) == 2
