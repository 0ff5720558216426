"""Every check of one app in one environment, in order: the chart's tests, the HTTP checks, the metric queries.
The first check that does not pass ends the verification (the rest are ``not-run``): a failure exits 1 with the
check's name and what it saw; a check that cannot run (a Service or port that does not exist, a query the API
rejects, the metrics API down) ends it as an error (exit 2 or 1), and nothing is recorded as passed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from deployctl.adapters.helm import Release
from deployctl.adapters.helm_argv import Kube
from deployctl.config import HttpCheck, MetricCheck
from deployctl.core.errors import DeployctlError, UsageError
from deployctl.verification import helm_test, http, metrics
from deployctl.verification.judge import render
from deployctl.verification.metrics import MetricsApi
from deployctl.verification.model import ERROR, PASSED, CheckResult, Subject, Verification, not_run
from deployctl.verification.plan import Plan
from deployctl.verification.proxy import ServiceProxy, url_request


class Where(Protocol):
    """The cluster the release runs in (``cluster.Cluster``)."""

    @property
    def kube(self) -> Kube: ...

    @property
    def namespace(self) -> str: ...

    def test(self, release: str, *, timeout: float) -> Release: ...


def run(
    plan: Plan,
    subject: Subject,
    where: Where,
    revision: Release,
    *,
    say: Callable[[str], None] = lambda _line: None,
    proxy: Callable[[], ServiceProxy] | None = None,
) -> Verification:
    """Run ``plan``'s checks against ``subject`` (``revision``: the release as helm records it, with its tests)."""
    started = time.monotonic()
    results: list[CheckResult] = []
    pending = plan.names
    service_proxy: ServiceProxy | None = None

    def get_proxy() -> ServiceProxy:
        nonlocal service_proxy
        if service_proxy is None:
            service_proxy = proxy() if proxy is not None else ServiceProxy(where.kube, where.namespace)
        return service_proxy

    def one(name: str, check: Callable[[], CheckResult]) -> bool:
        say(f"verifying {subject.app} in {subject.env}: {name}")
        try:
            result = check()
        except DeployctlError as exc:
            kind = dict(pending).get(name, "")
            result = CheckResult(name, kind, ERROR, exc.message, usage=isinstance(exc, UsageError), hint=exc.hint or "")
        results.append(result)
        say(f"  {result.outcome}: {result.line}")
        return result.outcome == PASSED

    steps: list[tuple[str, Callable[[], CheckResult]]] = []
    if plan.helm_test is not None:
        test = plan.helm_test

        def tests(seconds: float) -> Release:
            return where.test(subject.release, timeout=seconds)

        steps.append((helm_test.NAME, lambda: helm_test.run(test, subject.release, revision.tests, tests)))
    for check in plan.http:
        steps.append((check.label, _http(check, subject, get_proxy)))
    for metric in plan.metrics:
        steps.append((metric.name, _metric(metric, subject, plan.metrics_api)))
    for index, (name, step) in enumerate(steps):
        if not one(name, step):
            results.extend(not_run(pending[index + 1 :]))
            break
    return Verification(subject, tuple(results), time.monotonic() - started)


def _http(check: HttpCheck, subject: Subject, proxy: Callable[[], ServiceProxy]) -> Callable[[], CheckResult]:
    values = subject.placeholders()
    path = render(check.path, values)

    def go() -> CheckResult:
        if check.url is not None:
            url = render(check.url, values).rstrip("/") + (path if path != "/" else "")
            return http.probe(check, url, lambda seconds: url_request(check.method, url, seconds))
        service = render(check.service or "{{release}}", values)
        through = proxy()
        target = through.port(service, check.port)  # a Service or port that does not exist: exit 2
        return http.probe(
            check, f"{target}{path}", lambda seconds: through.request(check.method, target, path, seconds)
        )

    return go


def _metric(check: MetricCheck, subject: Subject, api: MetricsApi | None) -> Callable[[], CheckResult]:
    def go() -> CheckResult:
        if api is None:  # the configuration requires one (settings); a defensive line, not a traceback
            raise UsageError(f"no metrics API for {subject.env}: set environments.{subject.env}.metrics")
        return metrics.evaluate(check, subject.placeholders(), api.query)

    return go
