"""An HTTP check's loop: ``successes`` consecutive good answers pass it; the ``failure_limit + 1``-th bad one, or its
timeout, fails it. The API server's own "no endpoint yet" is asked again, never counted as the release's answer.
The request goes through ``fetch`` (the service proxy or a URL: ``proxy``), so the loop is unit-tested with a
recorded sequence of answers and a fake clock."""

from __future__ import annotations

import time
from collections.abc import Callable

from deployctl.config import HttpCheck
from deployctl.verification.judge import Answer, answer_problem
from deployctl.verification.model import FAILED, PASSED, CheckResult

KIND = "http"
REQUEST_TIMEOUT = 10.0  # one request, at most (less when the check's time runs out)
Fetch = Callable[[float], Answer]  # the request, bounded by the given seconds


def probe(
    check: HttpCheck,
    target: str,
    fetch: Fetch,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> CheckResult:
    """Run ``check`` against ``target`` (what it asks, for the lines: ``GET api:http/healthz``)."""
    started = clock()
    deadline = started + check.timeout_seconds
    streak, failures, seen = 0, 0, list[str]()
    problem = ""
    while True:
        remaining = deadline - clock()
        if remaining <= 0:
            line = f"{check.method} {target}: {streak} of {check.successes} consecutive good answers"
            line += f" after {check.timeout_seconds}s"
            return _result(check, FAILED, line + (f"; last: {problem}" if problem else ""), seen, clock() - started)
        answer = fetch(min(REQUEST_TIMEOUT, remaining))
        found = answer_problem(answer, check.expect_status, check.body_contains)
        seen.append(f"{check.method} {target}: {found or f'answered {answer.status}'}")
        if found is not None and not answer.served:
            streak, problem = 0, found  # the Service has no endpoint yet: the release has not answered
        elif found is None:
            streak += 1
            if streak >= check.successes:
                line = f"{check.method} {target} answered {check.expect_status} {streak} time(s) in a row"
                return _result(check, PASSED, line, seen, clock() - started)
        else:
            streak, failures, problem = 0, failures + 1, found
            if failures > check.failure_limit:
                tolerated = f" (after {failures - 1} tolerated)" if failures > 1 else ""
                return _result(check, FAILED, f"{check.method} {target} {found}{tolerated}", seen, clock() - started)
        sleep(max(0.0, min(check.interval_seconds, deadline - clock())))


def _result(check: HttpCheck, outcome: str, line: str, seen: list[str], seconds: float) -> CheckResult:
    hint = "" if outcome == PASSED else "fix what the release answers and roll forward (nothing was rolled back)"
    return CheckResult(
        check.label, KIND, outcome, line, tuple(seen[-5:]) if outcome != PASSED else (), seconds, hint=hint
    )
