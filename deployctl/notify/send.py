"""Webhook notifications (``environments.NAME.notify``): an event (``events``) rendered for Slack-compatible or plain
JSON targets, and delivered.

The message carries the release, the apps and their digests, the changelog link, the verdict and the first
line of the failure. A target's URL is a secret: it comes from the environment variable the config names,
the caller registers it with the redactor, and nothing here ever puts it in a message (a target is named by
its variable). Delivery is retried with backoff on connection errors, timeouts, 429 and 5xx; a delivery that
fails is reported as such (a warning for the caller), never raised: a notification never fails a deploy.
"""

from __future__ import annotations

import errno
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from deployctl.config import Notify
from deployctl.config.environments import EventKind, NotifyFormat
from deployctl.notify.events import EVENTS, Event

log = logging.getLogger(__name__)


SCHEMA = "deployctl/notify/v1"
RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})

# POST ``body`` (JSON bytes) to a URL within ``timeout`` seconds; returns the HTTP status. Raises OSError when
# nothing answered (refused, reset, timed out).
Post = Callable[[str, bytes, float], int]


@dataclass(frozen=True)
class Webhook:
    variable: str  # the environment variable holding the URL: how a target is named in messages
    url: str | None  # None: the variable is not set
    format: NotifyFormat
    events: tuple[EventKind, ...]


@dataclass(frozen=True)
class Delivery:
    target: str  # the variable's name
    delivered: bool
    attempts: int
    status: int | None = None
    problem: str = ""

    def describe(self) -> str:
        if self.delivered:
            return f"notified ${self.target} (HTTP {self.status}, attempt {self.attempts})"
        return f"notification to ${self.target} not delivered: {self.problem}"


@dataclass(frozen=True)
class Policy:
    """How hard delivery tries: ``attempts`` tries, waiting ``backoff`` x 2^n seconds between them."""

    attempts: int = 3
    backoff: float = 1.0
    timeout: float = 5.0
    sleep: Callable[[float], None] = field(default=time.sleep)


def targets(configured: Sequence[Notify], environ: Mapping[str, str]) -> list[Webhook]:
    return [Webhook(n.url_env, environ.get(n.url_env) or None, n.format, tuple(n.events or EVENTS)) for n in configured]


def payload(event: Event, fmt: NotifyFormat) -> dict[str, Any]:
    """The JSON body for a target of format ``fmt`` (``json``: deployctl's own document; ``slack``: an incoming
    webhook message, ``text`` plus blocks, which Slack-compatible receivers (Mattermost, Teams...) accept)."""
    if fmt == "json":
        return {
            "schema": SCHEMA,
            "event": event.kind,
            "env": event.env,
            "summary": event.summary,
            "release": event.release,
            "apps": [{"app": app, "digest": digest} for app, digest in event.apps],
            "changelog_url": event.changelog_url,
            "verdict": event.verdict,
            "failure": event.failure,
            "reason": event.reason,
            "actor": event.actor,
            "ci_run": event.ci_run,
        }
    title = f"{event.spec.icon} *{_slack(event.env)}: {event.spec.title}*" + (
        f" {_slack(event.release)}" if event.release else ""
    )
    lines = [title, _slack(event.summary)]
    lines += [f"• `{_slack(app)}` `{_slack(digest or 'no digest')}`" for app, digest in event.apps]
    if event.failure:
        lines.append(f"> {_slack(event.failure)}")
    if event.reason:
        lines.append(f"reason: {_slack(event.reason)}")
    context = [f"verdict: {_slack(event.verdict)}" if event.verdict else "", _by(event)]
    if event.changelog_url:
        context.append(f"<{event.changelog_url}|changelog>")
    return {
        "text": f"{event.env}: {event.spec.title}"
        + (f" {event.release}" if event.release else "")
        + f": {event.summary}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(c for c in context if c)}]},
        ],
    }


def _by(event: Event) -> str:
    if event.ci_run:
        return f"CI run {_slack(event.ci_run)}"
    return f"by {_slack(event.actor)}" if event.actor else ""


def _slack(text: str | None) -> str:
    """Slack's mrkdwn escapes (&, <, >): a value can never become a link or a mention."""
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def send(
    found: Sequence[Webhook], event: Event, *, post: Post | None = None, policy: Policy | None = None
) -> list[Delivery]:
    """Deliver ``event`` to each target that subscribed to it. Never raises for a delivery problem."""
    post = post or _post
    policy = policy or Policy()
    done = []
    for target in found:
        if event.kind not in target.events:
            continue
        if target.url is None:
            done.append(Delivery(target.variable, False, 0, problem=f"${target.variable} is not set: skipped"))
            continue
        body = json.dumps(payload(event, target.format)).encode()
        done.append(_deliver(target, body, post, policy))
    return done


def _deliver(target: Webhook, body: bytes, post: Post, policy: Policy) -> Delivery:
    problem, status = "", None
    for attempt in range(1, policy.attempts + 1):
        try:
            status = post(str(target.url), body, policy.timeout)
        except OSError as exc:  # refused, reset, timed out: the URL is never part of the message
            status, problem = None, f"no answer ({_reason(exc)})"
        else:
            if 200 <= status < 300:
                return Delivery(target.variable, True, attempt, status)
            problem = f"HTTP {status}"
            if status not in RETRYABLE:
                return Delivery(target.variable, False, attempt, status, f"{problem} (not retried)")
        if attempt < policy.attempts:
            wait = policy.backoff * 2 ** (attempt - 1)
            log.info("notification to $%s: %s; retrying in %.1fs", target.variable, problem, wait)
            policy.sleep(wait)
    return Delivery(target.variable, False, policy.attempts, status, f"{problem} after {policy.attempts} attempts")


def _reason(exc: OSError) -> str:
    reason = getattr(exc, "reason", None)  # URLError wraps the socket error
    found = reason if isinstance(reason, OSError) else exc
    return type(found).__name__ + (f": {found.strerror}" if found.strerror else "")


def _post(url: str, body: bytes, timeout: float) -> int:
    if not url.startswith(("https://", "http://")):
        raise OSError(errno.EINVAL, "not an http(s) URL")
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked above)
        url, data=body, method="POST", headers={"Content-Type": "application/json", "User-Agent": "deployctl"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
