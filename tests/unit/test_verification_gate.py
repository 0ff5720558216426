"""Verification as evidence: the rollout's ledger entry records it, the gate counts it (a digest is verified in the
source only when its rollout was healthy and its checks passed; checks configured but never run are refused), and
``deployctl verify`` records a result the gate then uses. The use cases run on the in-memory fakes
(tests/unit/fakes.py) with a metric check against a small local HTTP server that answers like Prometheus' query API
(canned JSON: the failures this layer maps; tests/lab/test_verification.py queries a real VictoriaMetrics)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deployctl.app import promote as promote_app
from deployctl.app.deploy import deploy
from deployctl.app.steps.recovery import reconcile
from deployctl.app.verify import verify
from deployctl.config import load
from deployctl.core.errors import ExitCode, OperationError, PolicyError, UsageError
from deployctl.ledger.entry import Check, Entry, Outcome
from deployctl.promotion.evidence import evidence_of, healthy
from deployctl.promotion.request import PromoteRequest
from deployctl.runner import ProcessRunner
from tests import values_files
from tests.unit.fakes import FakeContext, FakeS3
from tests.unit.test_use_cases import CONFIG, DIGEST, SHA, promote_world

OTHER = "sha256:" + "e" * 64
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PASSED = (Check("errors", "metric", "passed", "< 0.01 in 1 of 1 evaluation(s)"),)


def at(minutes: float) -> str:
    return (NOW - timedelta(minutes=60) + timedelta(minutes=minutes)).isoformat()


def rollout(minute: float, digest: str = DIGEST, **fields: Any) -> Entry:
    found: dict[str, Any] = {"outcome": "succeeded", "verdict": "healthy", **fields}
    return Entry("dev", "api", "deploy", digest=digest, time=at(minute), **found)


def verified(minute: float, outcome: str, digest: str = DIGEST) -> Entry:
    check = Check("errors", "metric", outcome, "0.2 is not < 0.01" if outcome == "failed" else "ok")
    state: Outcome = "succeeded" if outcome == "passed" else "failed"
    return Entry("dev", "api", "verify", state, digest=digest, verified=outcome, checks=(check,), time=at(minute))


def test_the_ledger_keeps_the_checks_and_old_entries_stay_as_they_were() -> None:
    entry = rollout(0, verified="passed", checks=PASSED)
    assert Entry.from_dict(json.loads(json.dumps(entry.to_dict()))) == entry
    assert "verified" not in rollout(0).to_dict() and "checks" not in rollout(0).to_dict()


def test_checks_configured_but_never_run_prove_nothing() -> None:
    entries = [rollout(0)]  # healthy pods, no verification recorded (checks configured since)
    assert healthy(entries[0]) and not healthy(entries[0], checks=True)
    found = evidence_of(entries, env="dev", app="api", digest=DIGEST, now=NOW, checks=True)
    assert not found.proven and found.unverified == entries[0] and found.failure is None
    assert evidence_of(entries, env="dev", app="api", digest=DIGEST, now=NOW).proven, "no checks: the verdict is proof"


def test_a_passed_verification_proves_the_digest_and_starts_its_period() -> None:
    entries = [rollout(0), verified(20, "passed")]
    found = evidence_of(entries, env="dev", app="api", digest=DIGEST, now=NOW, checks=True)
    assert found.proven and found.verified == entries[1] and found.ran_for == timedelta(minutes=40)
    assert "verified (deployctl verify) in dev" in found.describe() and "checks passed (errors)" in found.describe()
    assert found.data()["checks"] == [{"name": "errors", "kind": "metric", "outcome": "passed", "line": "ok"}]


def test_a_failed_verification_is_a_failure_of_the_digest() -> None:
    entries = [rollout(0, verified="passed", checks=PASSED), verified(20, "failed")]
    found = evidence_of(entries, env="dev", app="api", digest=DIGEST, now=NOW, checks=True)
    assert found.failed_after == entries[1] and not found.proven
    failed_rollout = rollout(0, outcome="failed", verdict="failed", verified="failed")
    assert evidence_of([failed_rollout], env="dev", app="api", digest=DIGEST, now=NOW).failure == failed_rollout


def test_verifications_never_judged_or_of_another_digest_change_nothing() -> None:
    proof = rollout(0, verified="passed", checks=PASSED)
    intent = Entry("dev", "api", "verify", "started", digest=DIGEST, time=at(10))  # killed halfway
    unknown = Entry("dev", "api", "verify", "unknown", digest=DIGEST, verified="unknown", time=at(15))
    entries = [proof, intent, unknown, verified(20, "failed", digest=OTHER)]
    found = evidence_of(entries, env="dev", app="api", digest=DIGEST, now=NOW, checks=True)
    assert found.proven and found.running and found.ran_for == timedelta(minutes=60)


# --------------------------------------------------------------------------- the use cases, with a metric check


class Prometheus(http.server.BaseHTTPRequestHandler):
    answers: list[tuple[int, dict[str, Any]]] = []  # noqa: RUF012 (the test sets what it answers)
    asked: list[str] = []  # noqa: RUF012
    tokens: list[str] = []  # noqa: RUF012

    def do_GET(self) -> None:  # noqa: N802 (http.server calls it by this name)
        self.asked.append(self.path)
        self.tokens.append(self.headers.get("Authorization", ""))
        status, body = self.answers[0] if len(self.answers) == 1 else self.answers.pop(0)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        del args


def value(number: float) -> tuple[int, dict[str, Any]]:
    return 200, {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, str(number)]}]},
    }


@pytest.fixture
def prometheus() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Prometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Prometheus.answers, Prometheus.asked, Prometheus.tokens = [value(0.001)], [], []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def checked(tmp_path: Path, prometheus: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PROM_TOKEN", "s3cr3t-token-value")
    verify_table = """
[[tool.deployctl.apps.api.verify.metrics]]
name = "errors"
query = 'sum(rate(errors{namespace="{{namespace}}",image=~".*{{digest}}"}[5m]))'
condition = "< 0.01"
count = 1
"""
    text = CONFIG.replace("[tool.deployctl.environments.dev]", verify_table + "[tool.deployctl.environments.dev]")
    metrics = f'metrics = {{ url = "{prometheus}", token_env = "PROM_TOKEN" }}\n'
    text = text.replace('values = "values-dev.yaml"\n', f'values = "values-dev.yaml"\n{metrics}')
    text = text.replace('values = "values-prod.yaml"\n', f'values = "values-prod.yaml"\n{metrics}')
    (tmp_path / "pyproject.toml").write_text(text)
    for name in ("values-dev.yaml", "values-prod.yaml"):
        (tmp_path / name).write_text(values_files.reference(name))
    return tmp_path


def dev(repo: Path) -> FakeContext:
    return FakeContext(load(repo / "pyproject.toml"), "dev", ProcessRunner(), s3=FakeS3(), digests={SHA: DIGEST})


def test_a_deploy_records_its_verification_in_the_rollouts_entry(checked: Path) -> None:
    ctx = dev(checked)
    result = deploy(ctx, image_tag=SHA)
    entry = ctx.entries()[0]
    assert (entry.outcome, entry.verdict, entry.verified) == ("succeeded", "healthy", "passed")
    assert entry.checks == (Check("errors", "metric", "passed", "< 0.01 in 1 of 1 evaluation(s)"),)
    (only,) = result.apps
    assert only.verification is not None and only.verification.outcome == "passed"
    assert "namespace%3D%22dev-ns%22" in Prometheus.asked[0] and DIGEST.split(":")[1] in Prometheus.asked[0]
    assert Prometheus.tokens == ["Bearer s3cr3t-token-value"], "the token from PROM_TOKEN, as a bearer"
    assert ctx.runner.redactor("said s3cr3t-token-value") == "said ***", "registered as a secret: never printed"


def test_a_metric_above_its_threshold_fails_the_deploy_and_is_never_healthy(checked: Path) -> None:
    Prometheus.answers = [value(0.2)]
    ctx = dev(checked)
    with pytest.raises(OperationError) as caught:
        deploy(ctx, image_tag=SHA)
    assert caught.value.exit_code == ExitCode.FAILED
    assert "verification of api in dev failed: check errors (metric): 0.2 is not < 0.01" in caught.value.message
    entry = ctx.entries()[0]
    assert (entry.outcome, entry.verdict, entry.verified) == ("failed", "failed", "failed")
    assert not healthy(entry, checks=True)


@pytest.mark.parametrize(
    ("answer", "code", "said"),
    [
        ((400, {"status": "error", "errorType": "bad_data", "error": "parse error at char 9"}), ExitCode.USAGE,
         "the metrics API rejected the query (HTTP 400 bad_data): parse error at char 9"),
        ((503, {"status": "error", "error": "overloaded"}), ExitCode.FAILED, "the metrics API answered HTTP 503"),
    ],
)  # fmt: skip
def test_a_check_that_cannot_run_records_nothing_as_passed(
    checked: Path, answer: tuple[int, dict[str, Any]], code: ExitCode, said: str
) -> None:
    Prometheus.answers = [answer]
    ctx = dev(checked)
    with pytest.raises(UsageError if code == ExitCode.USAGE else OperationError) as caught:
        deploy(ctx, image_tag=SHA)
    assert caught.value.exit_code == code and "check errors (metric)" in caught.value.message
    assert said in caught.value.message
    entry = ctx.entries()[0]
    assert (entry.outcome, entry.verified) == ("unknown", "error") and not healthy(entry)


def test_a_missing_token_variable_refuses_before_anything_changes(
    checked: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROM_TOKEN")
    ctx = dev(checked)
    with pytest.raises(UsageError) as caught:
        deploy(ctx, image_tag=SHA)
    assert "metric check 'errors'" in caught.value.message and "PROM_TOKEN" in caught.value.message
    assert ctx.fake_cluster.calls == [] and ctx.entries() == []


def test_deployctl_verify_records_a_result_the_gate_uses(
    checked: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("tests.unit.test_use_cases.deploy", lambda *_a, **_k: None)  # dev's rollout: below
    contexts, _, _ = promote_world(checked, monkeypatch)
    Prometheus.answers = [value(0.5)]  # dev's rollout fails its check: the gate refuses the digest
    with pytest.raises(OperationError):
        deploy(contexts["dev"], digest=DIGEST)
    with pytest.raises(PolicyError) as refused:
        promote_app.promote(contexts, PromoteRequest("release-1.0.0"))
    assert "verification failed: errors (metric): 0.5 is not < 0.01" in refused.value.message
    Prometheus.answers = [value(0.0)]  # dev was at fault (fixed since): verified again, it passes
    report = verify(contexts["dev"])
    assert report.ok and report.apps[0].verification is not None
    entry = contexts["dev"].ledger.read().entries[0]
    assert (entry.action, entry.outcome, entry.verified, entry.digest) == ("verify", "succeeded", "passed", DIGEST)
    result = promote_app.promote(contexts, PromoteRequest("release-1.0.0"))
    assert result.outcome == "succeeded"
    gate = next(g for g in result.plan.gates if g.name == "verified-in-source")
    assert "verified (deployctl verify) in dev" in gate.message and "checks passed (errors)" in gate.message
    assert "s3cr3t-token-value" not in capsys.readouterr().err


def test_checks_configured_but_never_run_in_the_source_are_refused(
    checked: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tests.unit.test_use_cases.deploy", lambda *_a, **_k: None)
    contexts, _, _ = promote_world(checked, monkeypatch)
    dev_ctx = contexts["dev"]
    assert isinstance(dev_ctx, FakeContext)
    # dev's healthy rollout of the digest, from before the app had checks (the same ledger and cluster)
    (checked / "before.toml").write_text(CONFIG)
    before = FakeContext(load(checked / "before.toml"), "dev", ProcessRunner(), s3=dev_ctx.s3)
    before.fake_cluster = dev_ctx.fake_cluster
    deploy(before, digest=DIGEST)
    assert before.ledger.read().entries[0].verified == "skipped"
    with pytest.raises(PolicyError) as refused:
        promote_app.promote(contexts, PromoteRequest("release-1.0.0"))
    assert refused.value.exit_code == ExitCode.REFUSED
    assert (
        "but the checks configured for api in dev never passed on it (its rollout recorded: no checks configured)"
        in refused.value.message
    )
    assert "`deployctl verify dev --app api`" in refused.value.message


def test_a_verification_killed_halfway_is_settled_unknown(checked: Path) -> None:
    ctx = dev(checked)
    deploy(ctx, image_tag=SHA)
    ctx.record(Entry("dev", "api", "verify", "started", digest=DIGEST))  # the run was killed during its checks
    with ctx.cluster() as cluster:
        settled = reconcile(ctx, cluster, "api", "api")
    assert len(settled) == 1 and settled[0].endswith(": unknown")
    entry = ctx.entries()[0]
    assert (entry.action, entry.outcome) == ("verify", "unknown") and not healthy(entry, checks=True)
