"""Webhook notifications (deployctl/notify/events.py and send.py), table-tested: the payloads of both formats, which targets get
an event, retries with backoff on what may pass and none on what will not, failures reported (never raised)
and never carrying the URL. Delivery over real HTTP is in tests/lab/test_notify.py."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from deployctl.config import Notify
from deployctl.notify import events
from deployctl.notify import send as notify

URL = "https://hooks.example.com/services/T0/B0/s3cr3t-token"
DIGEST = "sha256:" + "c" * 64
PROMOTED = events.Event(
    "promote-succeeded",
    "prod",
    "release-0.1.1 runs in prod",
    release="release-0.1.1",
    apps=(("api", DIGEST), ("worker", None)),
    changelog_url="https://github.com/acme/api/compare/aaa...bbb",
    verdict="healthy",
    actor="alice",
)
FAILED = events.Event(
    "deploy-failed",
    "dev",
    "deploy of api to dev failed",
    apps=(("api", DIGEST),),
    verdict="failed",
    failure=events.first_line("\n  rollout of api failed: CrashLoopBackOff <script>\n  pod api-1: exit 1\n"),
    ci_run="4242",
)


def test_the_json_payload_carries_every_fact() -> None:
    assert notify.payload(PROMOTED, "json") == {
        "schema": "deployctl/notify/v1",
        "event": "promote-succeeded",
        "env": "prod",
        "summary": "release-0.1.1 runs in prod",
        "release": "release-0.1.1",
        "apps": [{"app": "api", "digest": DIGEST}, {"app": "worker", "digest": None}],
        "changelog_url": "https://github.com/acme/api/compare/aaa...bbb",
        "verdict": "healthy",
        "failure": None,
        "reason": None,
        "actor": "alice",
        "ci_run": None,
    }


@pytest.mark.parametrize(
    ("event", "text", "section", "context"),
    [
        (
            PROMOTED,
            "prod: promoted release-0.1.1: release-0.1.1 runs in prod",
            f":white_check_mark: *prod: promoted* release-0.1.1\nrelease-0.1.1 runs in prod\n• `api` `{DIGEST}`\n"
            "• `worker` `no digest`",
            "verdict: healthy · by alice · <https://github.com/acme/api/compare/aaa...bbb|changelog>",
        ),
        (
            FAILED,
            "dev: deploy FAILED: deploy of api to dev failed",
            f":rotating_light: *dev: deploy FAILED*\ndeploy of api to dev failed\n• `api` `{DIGEST}`\n"
            "> rollout of api failed: CrashLoopBackOff &lt;script&gt;",  # escaped: no link or mention injected
            "verdict: failed · CI run 4242",
        ),
        (
            events.Event("freeze-overridden", "prod", "deploy into prod during 'weekend'", reason="hotfix <!here>"),
            "prod: freeze overridden: deploy into prod during 'weekend'",
            ":warning: *prod: freeze overridden*\ndeploy into prod during 'weekend'\nreason: hotfix &lt;!here&gt;",
            "",
        ),
    ],
)
def test_the_slack_payload(event: events.Event, text: str, section: str, context: str) -> None:
    body = notify.payload(event, "slack")
    assert body["text"] == text
    assert body["blocks"][0] == {"type": "section", "text": {"type": "mrkdwn", "text": section}}
    assert body["blocks"][1]["elements"][0]["text"] == context


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        ("", None),
        ("\n\n  first\nsecond", "first"),
        ("x" * 400, "x" * 299 + "…"),
    ],
)
def test_first_line_of_a_failure(text: str | None, expected: str | None) -> None:
    assert events.first_line(text) == expected


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"GITHUB_REPOSITORY": "acme/api"}, "https://github.com/acme/api/compare/aaa...bbb"),
        (
            {"GITHUB_REPOSITORY": "acme/api", "GITHUB_SERVER_URL": "https://ghe.example/"},
            "https://ghe.example/acme/api/compare/aaa...bbb",
        ),
    ],
)
def test_changelog_link_in_ci(environ: dict[str, str], expected: str | None) -> None:
    assert events.compare_url("aaa", "bbb", environ) == expected
    if expected:
        assert events.compare_url(None, "bbb", environ) == expected.replace("compare/aaa...bbb", "commit/bbb")


def test_unknown_events_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown notification event 'deployed'"):
        events.Event("deployed", "dev", "x")  # type: ignore[arg-type] # not an EventKind: what the check is for
    assert events.EVENTS == (
        "promote-succeeded",
        "promote-failed",
        "promote-refused",
        "deploy-failed",
        "lock-taken-over",
        "freeze-overridden",
    )


class Endpoint:
    """A scripted receiver: each POST takes the next answer (an HTTP status, or an OSError raised)."""

    def __init__(self, answers: Sequence[int | OSError]) -> None:
        self.answers = list(answers)
        self.bodies: list[dict[str, Any]] = []
        self.slept: list[float] = []

    def post(self, url: str, body: bytes, timeout: float) -> int:
        assert url == URL and timeout == 5.0
        self.bodies.append(json.loads(body))
        answer = self.answers.pop(0)
        if isinstance(answer, OSError):
            raise answer
        return answer

    def policy(self) -> notify.Policy:
        return notify.Policy(attempts=3, backoff=0.5, sleep=self.slept.append)


@pytest.mark.parametrize(
    ("answers", "delivered", "attempts", "slept", "problem"),
    [
        ([200], True, 1, [], ""),
        ([204], True, 1, [], ""),
        ([500, 200], True, 2, [0.5], ""),
        ([503, 429, 202], True, 3, [0.5, 1.0], ""),
        ([ConnectionRefusedError(111, "Connection refused"), 200], True, 2, [0.5], ""),
        ([500, 502, 503], False, 3, [0.5, 1.0], "HTTP 503 after 3 attempts"),
        (
            [ConnectionRefusedError(111, "Connection refused")] * 3,
            False,
            3,
            [0.5, 1.0],
            "no answer (ConnectionRefusedError: Connection refused) after 3 attempts",
        ),
        ([TimeoutError()] * 3, False, 3, [0.5, 1.0], "no answer (TimeoutError) after 3 attempts"),
        ([404], False, 1, [], "HTTP 404 (not retried)"),  # a wrong URL does not get better
        ([403], False, 1, [], "HTTP 403 (not retried)"),
    ],
)
def test_delivery_retries_with_backoff_what_may_pass(
    answers: list[int | OSError], delivered: bool, attempts: int, slept: list[float], problem: str
) -> None:
    endpoint = Endpoint(answers)
    target = notify.Webhook("SLACK_PROD", URL, "json", events.EVENTS)
    [delivery] = notify.send([target], PROMOTED, post=endpoint.post, policy=endpoint.policy())
    assert (delivery.delivered, delivery.attempts, delivery.problem) == (delivered, attempts, problem)
    assert endpoint.slept == slept
    assert len(endpoint.bodies) == attempts and all(b == endpoint.bodies[0] for b in endpoint.bodies)
    assert URL not in delivery.describe() and "s3cr3t" not in delivery.describe()
    assert "$SLACK_PROD" in delivery.describe()


def test_targets_get_only_the_events_they_chose_and_an_unset_variable_is_said() -> None:
    configured = [
        Notify(url_env="ALL_EVENTS"),
        Notify(url_env="FAILURES", format="slack", events=["deploy-failed", "promote-failed"]),
        Notify(url_env="UNSET"),
    ]
    found = notify.targets(configured, {"ALL_EVENTS": URL, "FAILURES": URL, "UNSET": ""})
    assert [(t.variable, t.url, t.format) for t in found] == [
        ("ALL_EVENTS", URL, "json"),
        ("FAILURES", URL, "slack"),
        ("UNSET", None, "json"),
    ]
    endpoint = Endpoint([200, 200, 200])
    done = notify.send(found, PROMOTED, post=endpoint.post, policy=endpoint.policy())
    assert [(d.target, d.delivered) for d in done] == [("ALL_EVENTS", True), ("UNSET", False)]
    assert done[1].describe() == "notification to $UNSET not delivered: $UNSET is not set: skipped"
    done = notify.send(found, FAILED, post=endpoint.post, policy=endpoint.policy())
    assert [d.target for d in done] == ["ALL_EVENTS", "FAILURES", "UNSET"]
    assert "blocks" in endpoint.bodies[-1] and "schema" in endpoint.bodies[-2]  # each target its own format


def test_a_url_that_is_not_http_is_refused_without_echoing_it() -> None:
    target = notify.Webhook("HOOK", "file:///etc/passwd", "json", events.EVENTS)
    [delivery] = notify.send([target], PROMOTED, policy=notify.Policy(attempts=1))
    assert not delivery.delivered
    assert delivery.problem == "no answer (OSError: not an http(s) URL) after 1 attempts"
    assert "passwd" not in delivery.describe()
