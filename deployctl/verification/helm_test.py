"""The chart's own tests: ``helm test RELEASE`` with the environment's kubeconfig, its test hooks watched with the
rollout's verdicts (``Cluster.test``), run again up to ``retries`` times after a failure."""

from __future__ import annotations

import time
from collections.abc import Callable

from deployctl.adapters.helm import Release
from deployctl.config import HelmTest
from deployctl.core.errors import DeployctlError, UsageError
from deployctl.verification.model import ERROR, FAILED, PASSED, CheckResult

KIND = "helm-test"
NAME = "helm-test"
Run = Callable[[float], Release]  # ``helm test`` bounded by the given seconds: the release with its tests' phases


def run(
    check: HelmTest, release: str, tests: tuple[tuple[str, str, str, str], ...], test: Run,
    *, clock: Callable[[], float] = time.monotonic,
) -> CheckResult:  # fmt: skip
    """``tests``: the chart's test hooks in the revision (none is the configuration's mistake: nothing to run)."""
    started = clock()
    if not tests:
        return CheckResult(
            NAME, KIND, ERROR, f"the chart of {release} has no test hooks (helm.sh/hook: test) to run",
            usage=True, hint="add a test hook to the chart, or remove helm_test from the app's verify configuration",
        )  # fmt: skip
    failures: list[str] = []
    for attempt in range(check.retries + 1):
        try:
            ran = test(float(check.timeout_seconds))
        except UsageError as exc:  # credentials, a missing tool
            return CheckResult(NAME, KIND, ERROR, exc.message, (), clock() - started, usage=True, hint=exc.hint or "")
        except DeployctlError as exc:
            lines = exc.message.splitlines()
            failures.append(lines[0] if lines else "failed")
            if attempt == check.retries:
                details = tuple(line.strip() for line in lines[1:])
                tried = f" (run {attempt + 1} of {check.retries + 1})" if check.retries else ""
                hint = exc.hint or "fix what the test found (or the test) and roll forward"
                return CheckResult(NAME, KIND, FAILED, (lines[0] if lines else "failed") + tried, details,
                                   clock() - started, hint=hint)  # fmt: skip
            continue
        names = ", ".join(f"{kind}/{name}" for kind, name, _, _ in ran.tests) or "none"
        again = f" on run {attempt + 1}" if attempt else ""
        return CheckResult(NAME, KIND, PASSED, f"{len(ran.tests)} test hook(s) succeeded{again}: {names}",
                           tuple(failures), clock() - started)  # fmt: skip
    raise AssertionError("unreachable")  # pragma: no cover
