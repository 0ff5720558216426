"""A metric check: a PromQL query against a Prometheus-compatible API (``GET /api/v1/query``), evaluated ``count``
times ``interval_seconds`` apart; each value must meet the condition, and more than ``failure_limit`` failed
evaluations fail the check (Argo Rollouts' ``count``/``interval``/``failureLimit``).

The API's own refusals are not the release's failure: a query Prometheus rejects (HTTP 400 ``bad_data``: a
syntax error) or a refused token is the configuration's (exit 2); an API that cannot be reached, times out or
answers 5xx is a dependency down (exit 1). Either records nothing as passed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from deployctl.config import MetricCheck
from deployctl.core.errors import DeployctlError, OperationError, UsageError
from deployctl.verification.judge import MetricCondition, QueryResultError, evaluation_problem, render, values_of
from deployctl.verification.model import ERROR, FAILED, PASSED, CheckResult, first_line

KIND = "metric"
Query = Callable[[str, float], list[tuple[str, float]]]  # (PromQL, timeout) -> each series' labels and value


@dataclass(frozen=True)
class MetricsApi:
    """An environment's Prometheus-compatible API and its bearer token (registered as a secret by the caller)."""

    url: str
    token: str | None = None
    where: str = "environments.ENV.metrics"  # the configuration key, for messages

    def query(self, promql: str, timeout: float) -> list[tuple[str, float]]:
        import urllib3

        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        endpoint = self.url.rstrip("/") + "/api/v1/query"
        try:
            response = urllib3.PoolManager().request(
                "GET",
                endpoint,
                fields={"query": promql},
                headers=headers,
                timeout=urllib3.Timeout(total=timeout),
                retries=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise OperationError(
                f"the metrics API {self.url} cannot be reached: {type(exc).__name__}: {first_line(str(exc))}",
                f"check that it is up and that {self.where}.url is right",
            ) from None
        text = response.data.decode("utf-8", "replace")
        try:
            doc = json.loads(text)
        except ValueError:
            doc = {}
        error = str(doc.get("error") or first_line(text) or f"HTTP {response.status}") if isinstance(doc, dict) else ""
        if response.status == 400:
            raise UsageError(f"the metrics API rejected the query (HTTP 400 {doc.get('errorType', '')}): {error}",
                             "fix the query (PromQL) in the configuration")  # fmt: skip
        if response.status in (401, 403):
            raise UsageError(
                f"the metrics API refused the credentials (HTTP {response.status})",
                f"check the token in the variable {self.where}.token_env names",
            )
        if response.status != 200 or not isinstance(doc, dict) or doc.get("status") != "success":
            raise OperationError(f"the metrics API answered HTTP {response.status}: {error}", "check the metrics API")
        try:
            return values_of(doc.get("data") or {})
        except QueryResultError as exc:
            raise UsageError(str(exc), "make the query return an instant vector (or a scalar)") from None


def evaluate(
    check: MetricCheck,
    placeholders: dict[str, str],
    query: Query,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> CheckResult:
    """Run ``check``: ``count`` evaluations, the first at once; a dependency error ends it as ``error``."""
    promql = render(check.query, placeholders)
    condition = MetricCondition.parse(check.condition)
    started = clock()
    failures: list[str] = []
    for index in range(check.count):
        if index:
            sleep(check.interval_seconds)
        try:
            problem = evaluation_problem(query(promql, float(check.timeout_seconds)), condition)
        except DeployctlError as exc:
            seconds = clock() - started
            return CheckResult(check.name, KIND, ERROR, exc.message, (f"query: {promql}",), seconds,
                               usage=isinstance(exc, UsageError), hint=exc.hint or "")  # fmt: skip
        if problem is not None:
            failures.append(f"evaluation {index + 1} of {check.count}: {problem}")
            if len(failures) > check.failure_limit:
                line = f"{problem} (evaluation {index + 1} of {check.count}; {len(failures)} failed, "
                line += f"{check.failure_limit} tolerated)"
                hint = "the release's metrics are out of bounds: fix it and roll forward (nothing was rolled back)"
                return CheckResult(check.name, KIND, FAILED, line, (f"query: {promql}", *failures), clock() - started,
                                   hint=hint)  # fmt: skip
    tolerated = f", {len(failures)} tolerated failure(s)" if failures else ""
    line = f"{condition} in {check.count - len(failures)} of {check.count} evaluation(s){tolerated}"
    return CheckResult(check.name, KIND, PASSED, line, (), clock() - started)
