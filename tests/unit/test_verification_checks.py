"""Verification's pure parts: the configuration (strict, overrides, precise errors), the judgements (answers,
conditions, query results), each check's loop on a fake clock, and the outcome a verification reports."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from deployctl.adapters.helm import Release, parse_release_json
from deployctl.adapters.helm_argv import Kube as HelmKube
from deployctl.adapters.helm_argv import test_argv as helm_test_argv
from deployctl.config import ConfigProblemsError, HelmTest, HttpCheck, MetricCheck, load
from deployctl.core.errors import ExitCode, OperationError, UsageError
from deployctl.verification import helm_test, http, metrics
from deployctl.verification.judge import Answer, MetricCondition, QueryResultError, answer_problem, render, values_of
from deployctl.verification.model import CheckResult, Subject, Verification, describe

ROOT = Path(__file__).resolve().parents[2]
BASE = """
[tool.deployctl]
[tool.deployctl.apps.api]
chart = "charts/api"
release = "api"
image = { registry = "r.example", repository = "api" }
__VERIFY__
[tool.deployctl.environments.dev]
aws = { region = "us-east-1" }
cluster = { kubeconfig = "kubeconfig" }
namespace = "api"
values = "values-dev.yaml"
__DEV__
[tool.deployctl.environments.prod]
aws = { region = "us-east-1" }
cluster = { kubeconfig = "kubeconfig" }
namespace = "api"
values = "values-prod.yaml"
promote_from = "dev"
metrics = { url = "https://prom.example", token_env = "PROM_TOKEN" }
"""
VERIFY = """
[tool.deployctl.apps.api.verify]
helm_test = { timeout_seconds = 60 }
http = [{ path = "/healthz", successes = 2 }]
[[tool.deployctl.apps.api.verify.environments.prod.metrics]]
name = "errors"
query = 'sum(rate(http_errors{namespace="{{namespace}}"}[5m]))'
condition = "< 0.01"
"""
SUBJECT = Subject("dev", "api", "api", "dev-api", "sha256:" + "a" * 64)


def config(tmp_path: Path, verify: str = VERIFY, dev: str = "") -> Any:
    path = tmp_path / "pyproject.toml"
    path.write_text(BASE.replace("__VERIFY__", verify).replace("__DEV__", dev))
    return load(path)


def problems(tmp_path: Path, verify: str, dev: str = "") -> list[str]:
    with pytest.raises(ConfigProblemsError) as caught:
        config(tmp_path, verify, dev)
    return caught.value.problems


def test_an_environment_overrides_what_it_names_and_keeps_the_rest(tmp_path: Path) -> None:
    app = config(tmp_path).settings.apps["api"]
    dev, prod = app.verify.resolved("dev"), app.verify.resolved("prod")
    assert dev.helm_test == prod.helm_test == HelmTest(timeout_seconds=60)
    assert [c.label for c in dev.http or ()] == [c.label for c in prod.http or ()] == ["http-healthz"]
    assert (dev.metrics, [m.name for m in prod.metrics or ()]) == ([], ["errors"])


@pytest.mark.parametrize(
    ("verify", "dev", "expected"),
    [
        (
            "[tool.deployctl.apps.api.verify]\nhttp = [{ pth = '/' }]",
            "",
            "http.0.pth: unknown key (did you mean 'path'?)",
        ),
        (
            "[tool.deployctl.apps.api.verify]\nhelm_tset = {}",
            "",
            "verify.helm_tset: unknown key (did you mean 'helm_test'?)",
        ),
        (VERIFY.replace("< 0.01", "below 0.01"), "", "does not match the expected form"),
        (VERIFY.replace("{{namespace}}", "{{cluster}}"), "", "unknown placeholder {{cluster}} (known: {{digest}}"),
        (
            VERIFY.replace("environments.prod.metrics", "metrics"),
            "",
            "metric check 'errors' runs in dev, which has no metrics API",
        ),
        (
            VERIFY.replace("environments.prod", "environments.stage"),
            "",
            "verify.environments.stage: unknown environment",
        ),
        (
            "[tool.deployctl.apps.api.verify]\nhttp = [{ path = '/a' }, { path = '/a/b' }]",
            "",
            "check name 'http-a' is used twice",
        ),
        ("[tool.deployctl.apps.api.verify]\nhttp = [{ url = 'https://x', service = 'api' }]", "", "not both"),
    ],
)
def test_bad_verification_configuration_names_the_key_and_the_fix(
    tmp_path: Path, verify: str, dev: str, expected: str
) -> None:
    found = problems(tmp_path, verify, dev)
    assert any(expected in p for p in found), found


# --------------------------------------------------------------------------- judgements


@pytest.mark.parametrize(
    ("answer", "status", "body", "expected"),
    [
        (Answer(200, "ok"), 200, None, None),
        (Answer(200, "ok\nmore"), 200, "ok", None),
        (Answer(500, "boom\ntrace"), 200, None, "answered 500, expected 200: boom"),
        (Answer(200, "degraded"), 200, "ok", "answered 200 without 'ok' in its body: degraded"),
        (Answer(0, error="ReadTimeoutError: timed out"), 200, None, "no answer: ReadTimeoutError: timed out"),
        (Answer(503, "(API server) no endpoints available for service \"api:http\""), 200, None,
         "answered 503, expected 200: (API server) no endpoints available"),
    ],
)  # fmt: skip
def test_an_answer_is_judged_against_the_status_and_body_expected(
    answer: Answer, status: int, body: str | None, expected: str | None
) -> None:
    found = answer_problem(answer, status, body)
    assert found == expected if expected is None else (found is not None and found.startswith(expected)), found


@pytest.mark.parametrize(
    ("text", "value", "holds"),
    [("< 0.01", 0.005, True), ("< 0.01", 0.01, False), ("<=0.01", 0.01, True), (">= 0.95", 0.9, False),
     ("> -1", 0.0, True), ("== 0", 0.0, True), ("!= 0", 0.0, False), ("< 1e-3", 0.0001, True), ("< 5", math.nan, False)],
)  # fmt: skip
def test_conditions(text: str, value: float, holds: bool) -> None:
    assert MetricCondition.parse(text).holds(value) is holds


def test_query_results_read_as_series_and_values() -> None:
    vector = {"resultType": "vector", "result": [{"metric": {"__name__": "x", "code": "500"}, "value": [1, "0.5"]}]}
    assert values_of(vector) == [('{code="500"}', 0.5)]
    assert values_of({"resultType": "scalar", "result": [1, "2"]}) == [("", 2.0)]
    assert values_of({"resultType": "vector", "result": []}) == []
    with pytest.raises(QueryResultError, match="returns a matrix"):
        values_of({"resultType": "matrix", "result": []})


def test_placeholders_are_replaced() -> None:
    query = 'rate(x{namespace="{{namespace}}",image=~".*{{ digest }}"}[5m]) # {{release}}'
    rendered = render(query, SUBJECT.placeholders())
    assert rendered == f'rate(x{{namespace="dev-api",image=~".*{SUBJECT.digest}"}}[5m]) # api'


# --------------------------------------------------------------------------- the loops, on a fake clock


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def answers(*found: Answer) -> Any:
    queue = list(found)
    return lambda _timeout: queue.pop(0) if len(queue) > 1 else queue[0]


def test_http_passes_after_consecutive_successes_and_a_failure_resets_the_streak() -> None:
    clock = Clock()
    check = HttpCheck(path="/healthz", successes=2, failure_limit=1, interval_seconds=1)
    result = http.probe(check, "api:http/healthz", answers(Answer(200), Answer(500), Answer(200), Answer(200)),
                        clock=clock, sleep=clock.sleep)  # fmt: skip
    assert (result.outcome, result.name) == ("passed", "http-healthz")
    assert result.line == "GET api:http/healthz answered 200 2 time(s) in a row"
    assert clock.now == 3.0, "three intervals between four answers"


def test_http_fails_at_the_first_failure_past_its_limit_naming_what_it_saw() -> None:
    clock = Clock()
    check = HttpCheck(path="/healthz", failure_limit=0)
    result = http.probe(check, "api:http/healthz", answers(Answer(500, "Internal Server Error")), clock=clock,
                        sleep=clock.sleep)  # fmt: skip
    assert result.outcome == "failed"
    assert result.line == "GET api:http/healthz answered 500, expected 200: Internal Server Error"
    assert clock.now == 0.0, "no waiting once it failed"


def test_http_gives_up_at_its_timeout() -> None:
    clock = Clock()
    check = HttpCheck(path="/", successes=100, interval_seconds=5, timeout_seconds=12)
    result = http.probe(check, "api:http/", answers(Answer(200)), clock=clock, sleep=clock.sleep)
    assert result.outcome == "failed" and "3 of 100 consecutive good answers after 12s" in result.line
    assert clock.now == 12.0


def metric(values: list[list[tuple[str, float]]], **kwargs: Any) -> tuple[CheckResult, Clock, list[str]]:
    clock, asked = Clock(), []
    check = MetricCheck(name="errors", query='x{ns="{{namespace}}"}', condition="< 0.01", interval_seconds=10, **kwargs)

    def query(promql: str, _timeout: float) -> list[tuple[str, float]]:
        asked.append(promql)
        return values.pop(0)

    return metrics.evaluate(check, SUBJECT.placeholders(), query, clock=clock, sleep=clock.sleep), clock, asked


def test_a_metric_below_its_threshold_passes_every_evaluation() -> None:
    result, clock, asked = metric([[("", 0.001)], [("", 0.0)], [("", 0.002)]], count=3)
    assert result.outcome == "passed" and result.line == "< 0.01 in 3 of 3 evaluation(s)"
    assert asked == ['x{ns="dev-api"}'] * 3 and clock.now == 20.0, "count 3, 10 s apart"


def test_a_metric_above_its_threshold_fails_once_past_its_tolerance() -> None:
    result, _, _ = metric([[("", 0.001)], [('{code="500"}', 0.2)], [("", 0.3)]], count=3, failure_limit=1)
    assert result.outcome == "failed"
    assert result.line.startswith("0.3 is not < 0.01 (evaluation 3 of 3; 2 failed, 1 tolerated)"), result.line
    assert 'evaluation 2 of 3: {code="500"} 0.2 is not < 0.01' in result.details


def test_no_data_is_a_failed_evaluation() -> None:
    result, _, _ = metric([[]], count=1)
    assert result.outcome == "failed" and result.line.startswith("no data")


@pytest.mark.parametrize(
    ("error", "usage"), [(UsageError("rejected the query"), True), (OperationError("down"), False)]
)
def test_a_query_the_api_refuses_is_an_error_not_a_failure(error: Exception, usage: bool) -> None:
    clock = Clock()
    check = MetricCheck(name="errors", query="x", condition="< 1")

    def query(_promql: str, _timeout: float) -> list[tuple[str, float]]:
        raise error

    result = metrics.evaluate(check, {}, query, clock=clock, sleep=clock.sleep)
    assert (result.outcome, result.usage) == ("error", usage)


def test_helm_test_runs_again_after_a_failure_up_to_its_retries() -> None:
    tests = (("Job", "api-smoke", "", "before-hook-creation"),)
    ran = Release("api", "dev-api", 2, "deployed", tests=(("Job", "api-smoke", "Succeeded", ""),))
    calls: list[float] = []

    def run(seconds: float) -> Release:
        calls.append(seconds)
        if len(calls) == 1:
            raise OperationError("helm test of api: hook Job/api-smoke: pod api-smoke-x failed\n  event Warning ...")
        return ran

    result = helm_test.run(HelmTest(timeout_seconds=30, retries=1), "api", tests, run)
    assert (result.outcome, calls) == ("passed", [30.0, 30.0])
    assert result.line == "1 test hook(s) succeeded on run 2: Job/api-smoke"

    def broken(_seconds: float) -> Release:
        raise OperationError("helm test of api: hook Job/api-smoke: exit 1\n  logs ...")

    failed = helm_test.run(HelmTest(retries=0), "api", tests, broken)
    assert failed.outcome == "failed" and failed.details == ("logs ...",)
    none = helm_test.run(HelmTest(), "api", (), run)
    assert (none.outcome, none.usage) == ("error", True) and "has no test hooks" in none.line


def test_helm_keeps_test_hooks_apart_from_the_revisions_hooks() -> None:
    doc = ROOT / "tests" / "unit" / "data" / "helm-status-with-tests.json"
    release = parse_release_json(doc.read_text())
    assert release.hooks == (("Job", "worker-migrate", "Succeeded"),)
    assert release.tests == (("Job", "api-smoke", "Failed", "before-hook-creation"),)
    argv = helm_test_argv(release="api", namespace="dev-api", kube=HelmKube(Path("k")), timeout=60.5)
    assert argv == ["helm", "test", "api", "--namespace", "dev-api", "--timeout", "60s", "--kubeconfig", "k"]


# --------------------------------------------------------------------------- the outcome


def test_the_outcome_and_the_error_name_the_check_and_what_it_saw() -> None:
    passed = CheckResult("helm-test", "helm-test", "passed", "1 test hook(s) succeeded")
    failed = CheckResult("http-healthz", "http", "failed", "GET api:http/healthz answered 500, expected 200")
    error = CheckResult("errors", "metric", "error", "the metrics API rejected the query", usage=True)
    assert Verification(SUBJECT).outcome == "skipped" and Verification(SUBJECT).passed
    assert Verification(SUBJECT, (passed,)).error() is None
    found = Verification(SUBJECT, (passed, failed)).error()
    assert found is not None and found.exit_code == ExitCode.FAILED
    assert found.message.startswith("verification of api in dev failed: check http-healthz (http): GET api:http")
    config_error = Verification(SUBJECT, (passed, error)).error()
    assert config_error is not None and config_error.exit_code == ExitCode.USAGE
    assert "could not run check errors (metric)" in config_error.message
    record = Verification(SUBJECT, (passed, failed)).record()
    assert [(c.name, c.outcome) for c in record] == [("helm-test", "passed"), ("http-healthz", "failed")]
    assert describe("failed", record) == "checks failed: http-healthz (http): " + failed.line
    assert describe("passed", record[:1]) == "checks passed (helm-test)"


def test_http_asks_again_while_the_service_has_no_endpoint_and_fails_only_at_its_timeout() -> None:
    """The API server's own 404/503 (``served=False``: no endpoint to proxy to yet) is not the release's answer."""
    not_yet = Answer(404, '(API server) services "api" not found', served=False)
    clock = Clock()
    check = HttpCheck(path="/readyz", successes=2, interval_seconds=1, timeout_seconds=30)
    result = http.probe(check, "api:http/readyz", answers(not_yet, not_yet, Answer(200), Answer(200)), clock=clock,
                        sleep=clock.sleep)  # fmt: skip
    assert result.outcome == "passed" and clock.now == 3.0

    clock = Clock()
    result = http.probe(check, "api:http/readyz", answers(not_yet), clock=clock, sleep=clock.sleep)
    assert result.outcome == "failed" and clock.now == 30.0
    assert result.line.endswith('after 30s; last: answered 404, expected 200: (API server) services "api" not found')
