"""Each check's result is shown next to the rollout verdict: on the board (cell and timeline, HTML and Markdown, the
job summary), in a rollout's result (JSON and text), and a digest whose checks never ran is not "waiting" to be
promoted as if proven."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from deployctl.board import model as board_model
from deployctl.board import render as board_render
from deployctl.board import render_md
from deployctl.board.model import Board, Column, Live
from deployctl.core.refs import ImageRef
from deployctl.ledger.entry import Check, Entry
from deployctl.rollout.results import DeployResult
from deployctl.rollout.states import Health
from deployctl.verification.model import CheckResult, Subject, Verification

DIGEST = "sha256:" + "b" * 64
FAILED = (
    Check("helm-test", "helm-test", "passed", "1 test hook(s) succeeded: Job/api-smoke"),
    Check("readyz", "http", "failed", "GET api:http/readyz answered 500, expected 200"),
)
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def entries() -> list[Entry]:
    passed = Entry("dev", "api", "verify", "succeeded", digest=DIGEST, verified="passed", checks=FAILED[:1],
                   time=(NOW - timedelta(minutes=5)).isoformat())  # fmt: skip
    failed = Entry("dev", "api", "deploy", "failed", digest=DIGEST, verdict="failed", verified="failed",
                   checks=FAILED, message="verification failed: readyz (http): ...",
                   time=(NOW - timedelta(minutes=30)).isoformat())  # fmt: skip
    return [passed, failed]


def board() -> Board:
    live = Live(True, 3, "deployed", DIGEST, None, Health(True, (), "1/1 pods"))
    cell = board_model.cell("dev", "api", live, entries(), None)
    column = Column("dev", None, "open", False, board_model.timeline("dev", entries(), 10))
    return Board(NOW.isoformat(), ("api",), (column,), {("dev", "api"): cell}, ())


def test_the_board_shows_each_checks_result_beside_the_verdict() -> None:
    shown = board()
    assert shown.cell("dev", "api").checks == "checks passed (helm-test)"
    verify, deploy = shown.columns[0].timeline
    assert (verify.action, verify.checks) == ("verify", "checks passed (helm-test)")
    assert deploy.checks == "checks failed: readyz (http): GET api:http/readyz answered 500, expected 200"
    text = render_md.markdown(shown)
    assert "· checks passed (helm-test)" in text
    assert "succeeded verify api `sha256:bbbbbbbbbbbb` by root — checks passed (helm-test)" in text.replace(
        f"by {verify.by}", "by root"
    )
    html = board_render.html(shown)
    assert '<div class="checks muted">checks passed (helm-test)</div>' in html
    assert shown.data()["environments"][0]["apps"][0]["checks"] == "checks passed (helm-test)"


def test_a_digest_whose_checks_never_ran_does_not_wait_as_proven() -> None:
    source = {"api": [Entry("dev", "api", "deploy", "succeeded", digest=DIGEST, verdict="healthy",
                            time=(NOW - timedelta(hours=1)).isoformat())]}  # fmt: skip
    found = board_model.waiting_digests("prod", "dev", source, {}, ["api"], now=NOW, soak=timedelta())
    assert [w.what for w in found] == [DIGEST], "no checks configured: its healthy rollout is proof"
    checked = board_model.waiting_digests("prod", "dev", source, {}, ["api"], now=NOW, soak=timedelta(), checks=["api"])
    assert checked == [], "checks configured but never run: not proven"


def test_a_rollouts_result_carries_its_verification() -> None:
    subject = Subject("dev", "api", "api", "dev-api", DIGEST)
    verification = Verification(subject, (CheckResult("readyz", "http", "passed", "GET api:http/readyz answered 200 3 time(s) in a row"),), 3.2)  # fmt: skip
    result = DeployResult("dev", "api", "api", "dev-api", ImageRef("r", "api", digest=DIGEST), None, 4, 4,
                          "succeeded", "healthy: 1/1 pods; verified: passed (readyz)", 9.0, verification=verification)  # fmt: skip
    data = result.data()["verification"]
    assert data["outcome"] == "passed" and data["checks"][0]["name"] == "readyz"
    lines = result.text()
    assert "  rollout healthy: 1/1 pods" in lines
    assert "  verify  passed in 3.2s" in lines
    assert "    passed  readyz (http): GET api:http/readyz answered 200 3 time(s) in a row" in lines
