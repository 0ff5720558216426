"""How long a registry operation may take: timeouts per try, a few tries with backoff, a deadline.

A registry that accepts connections and never answers (a stopped process, a hung proxy) costs one read
timeout per try, so the tries are few and a deadline stops new ones: one operation gives up within about
``RetryPolicy.deadline`` seconds. Every retry is said on stderr (the ``deployctl.adapters.registry`` logger at
WARNING, which the console prints), and the final error names the registry, what it did (not answering,
not reachable, failing) and the step that needed it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from deployctl.adapters.registry.errors import RegistryError, TransientError

log = logging.getLogger("deployctl.adapters.registry")

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Timeouts per try, how many tries, and the deadline after which no new try starts."""

    attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 8.0
    connect_timeout: float = 3.0
    read_timeout: float = 10.0  # per socket read: a blob streaming for minutes is fine, a silent registry is not
    deadline: float = 40.0  # a new try starts only if it can end (worst case) before this
    commit_timeout: float = 120.0  # the PUT that completes a blob upload (the registry may move the blob first)

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay, self.base_delay * (2 ** (attempt - 1))))

    @property
    def try_seconds(self) -> float:
        """The longest one try of a request waits for nothing: connect, then one silent read."""
        return self.connect_timeout + self.read_timeout


def seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 1 else f"{value:.1f} s"


def with_retries(what: str, policy: RetryPolicy, action: Callable[[], T], *, deadline: bool = True) -> T:
    """Run ``action``; retry it on ``TransientError`` with exponential backoff, at most ``policy.attempts``
    tries and (``deadline``) no try that could end after ``policy.deadline`` seconds. A blob copy passes
    ``deadline=False``: its tries are bounded by the read timeout, not by how long a healthy copy takes."""
    started = time.monotonic()
    for attempt in range(1, policy.attempts + 1):
        try:
            return action()
        except TransientError as exc:
            elapsed = time.monotonic() - started
            wait = policy.delay(attempt)
            late = deadline and elapsed + wait + policy.try_seconds > policy.deadline
            if attempt == policy.attempts or late:
                raise gave_up(what, policy, exc, attempt, elapsed) from None
            log.warning(
                "%s, retry %d/%d in %s: %s (%s)",
                _subject(exc),
                attempt + 1,
                policy.attempts,
                seconds(wait),
                what,
                exc,
            )
            time.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def gave_up(what: str, policy: RetryPolicy, exc: TransientError, attempt: int, elapsed: float) -> RegistryError:
    """The one error for a registry operation that ran out of tries (or time)."""
    tries = "1 attempt" if attempt == 1 else f"{attempt} attempts"
    if exc.state == "failing":
        hint = "the registry keeps failing: check its health (for ECR: the AWS status page), then re-run"
    else:
        where = f"the registry {exc.host}" if exc.host else "the registry"
        hint = (
            f"check that {where} is up and reachable from here, then re-run "
            f"(a registry operation gives up after about {policy.deadline:.0f} s)"
        )
    return RegistryError(
        f"{_subject(exc)}: {what} gave up after {tries} in {seconds(elapsed)} ({exc})",
        hint,
        details={
            "dependency": f"registry {exc.host}".strip(),
            "dependency_state": exc.state,
            "step": what,
            "tries": attempt,
            "seconds": round(elapsed, 1),
        },
    )


def _subject(exc: TransientError) -> str:
    return f"registry {exc.host} {exc.state}" if exc.host else f"registry {exc.state}"
