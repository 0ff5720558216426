"""deploy and promote inside a change window, and what they announce (issue 18), on the fake context of
tests/unit/test_use_cases.py: refused with exit 4 before anything changes (no ledger entry, no lock, no helm
call, no image moved); ``--override-freeze --reason`` proceeds, the reason on the command's entries and
announced; a promotion's dry run is not refused but says the freeze would block. Every success is checked
against the state it claims (what the cluster serves, the values file, the ledger)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deployctl.app import promote as promote_app
from deployctl.app.deploy import deploy
from deployctl.config import load
from deployctl.core.errors import ExitCode, OperationError, PolicyError
from deployctl.ledger.entry import Override
from deployctl.promotion.request import PromoteRequest
from deployctl.rollout.states import Verdict
from deployctl.runner import ProcessRunner
from tests import values_files
from tests.unit.fakes import FakeContext, FakeS3
from tests.unit.test_use_cases import CONFIG, DIGEST, SHA, promote_world

HOOK = "DEPLOYCTL_TEST_HOOK"
TODAY = datetime.now(UTC).date()
WINDOW = f"{TODAY - timedelta(days=1)} - {TODAY + timedelta(days=2)}: code freeze"
SETTINGS = f'freeze = {{ dated = {{ year-end = "{WINDOW}" }} }}\nnotify = [{{ url_env = "{HOOK}" }}]\n'
OVERRIDE = Override("--override-freeze", "INC-7: the fix for the outage")


def repo_with(tmp_path: Path, frozen: str) -> Path:
    """This repository's charts and values; ``frozen`` (dev or prod) has a window in force now and a webhook."""
    dev, prod = CONFIG.split("[tool.deployctl.environments.prod]")
    text = dev + (SETTINGS if frozen == "dev" else "") + "[tool.deployctl.environments.prod]" + prod
    (tmp_path / "pyproject.toml").write_text(text + (SETTINGS if frozen == "prod" else ""))
    for name in ("values-dev.yaml", "values-prod.yaml"):
        (tmp_path / name).write_text(values_files.reference(name))
    return tmp_path


@pytest.fixture
def posted(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The webhook's deliveries (a real receiver: tests/lab/test_notify.py)."""
    found: list[dict[str, Any]] = []

    def post(url: str, body: bytes, timeout: float) -> int:
        assert url == "https://hooks.example/T0/B0" and timeout > 0
        found.append(json.loads(body))
        return 200

    monkeypatch.setenv(HOOK, "https://hooks.example/T0/B0")
    monkeypatch.setattr("deployctl.notify.send._post", post)
    return found


def frozen_dev(tmp_path: Path) -> tuple[FakeContext, FakeS3]:
    s3 = FakeS3()
    config = load(repo_with(tmp_path, "dev") / "pyproject.toml")
    return FakeContext(config, "dev", ProcessRunner(), s3=s3, digests={SHA: DIGEST}), s3


def test_deploy_during_a_freeze_is_refused_and_changes_nothing(tmp_path: Path, posted: list[dict[str, Any]]) -> None:
    ctx, s3 = frozen_dev(tmp_path)
    with pytest.raises(PolicyError) as refused:
        deploy(ctx, image_tag=SHA)
    assert refused.value.exit_code == ExitCode.REFUSED
    assert refused.value.message.startswith("deploy into dev refused: dev is frozen by 'year-end'")
    assert "code freeze; ends " in refused.value.message
    assert refused.value.hint is not None and "--override-freeze --reason TEXT" in refused.value.hint
    assert ctx.fake_cluster.calls == [], "no helm call: not even a render"
    assert s3.objects == {}, "no ledger entry, no lock"
    assert posted == []


def test_deploy_with_the_override_proceeds_records_the_reason_and_announces_it(
    tmp_path: Path, posted: list[dict[str, Any]]
) -> None:
    ctx, s3 = frozen_dev(tmp_path)
    report = deploy(ctx, image_tag=SHA, override_freeze=OVERRIDE.reason)
    assert ctx.fake_cluster.serving == {"api": DIGEST}, "the new digest serves"
    done, intent, override = ctx.entries()
    assert (done.outcome, done.verdict, done.overrides, intent.overrides) == (
        "succeeded",
        "healthy",
        (OVERRIDE,),
        (OVERRIDE,),
    )
    assert (override.action, override.overrides) == ("override", (OVERRIDE,))
    assert report.apps[0].outcome == "succeeded" and s3.held_lock("dev") is None
    ((event),) = posted
    assert (event["event"], event["env"], event["reason"]) == ("freeze-overridden", "dev", OVERRIDE.reason)


def test_a_failed_deploy_is_announced_and_its_entry_keeps_the_verdicts_summary(
    tmp_path: Path, posted: list[dict[str, Any]]
) -> None:
    ctx, _ = frozen_dev(tmp_path)
    ctx.fake_cluster.verdict = Verdict("failed", "pod api-1 container api: CrashLoopBackOff").diagnosed(
        ["event BackOff: back-off restarting failed container", "log: panic: no config"]
    )
    with pytest.raises(OperationError) as failed:
        deploy(ctx, image_tag=SHA, override_freeze=OVERRIDE.reason)
    assert "log: panic: no config" in failed.value.message, "the diagnosis is in the error"
    done, _, _ = ctx.entries()
    assert (done.outcome, done.message) == ("failed", "pod api-1 container api: CrashLoopBackOff")
    overridden, event = posted
    assert overridden["event"] == "freeze-overridden"
    assert (event["event"], event["env"], event["verdict"], event["reason"]) == (
        "deploy-failed",
        "dev",
        "failed",
        OVERRIDE.reason,
    )
    assert event["apps"] == [{"app": "api", "digest": DIGEST}]
    assert event["failure"] == "rollout of api to dev failed: pod api-1 container api: CrashLoopBackOff"


def frozen_prod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, FakeContext, Any]:
    contexts, _, endpoints = promote_world(repo_with(tmp_path, "prod"), monkeypatch)
    prod = contexts["prod"]
    assert isinstance(prod, FakeContext)
    return contexts, prod, endpoints


def test_promote_during_a_freeze_is_refused_changes_nothing_and_is_announced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, posted: list[dict[str, Any]]
) -> None:
    contexts, prod, endpoints = frozen_prod(tmp_path, monkeypatch)
    values = (tmp_path / "values-prod.yaml").read_text()
    with pytest.raises(PolicyError, match="promote into prod refused: prod is frozen by 'year-end'"):
        promote_app.promote(contexts, PromoteRequest("release-1.0.0"))
    assert endpoints.transfers == [] and (tmp_path / "values-prod.yaml").read_text() == values
    assert prod.entries() == [] and prod.fake_cluster.calls == [] and prod.s3.held_lock("prod") is None
    ((event),) = posted
    assert (event["event"], event["release"], event["verdict"]) == ("promote-refused", "release-1.0.0", "refused")
    assert event["failure"].startswith("promote into prod refused: prod is frozen by 'year-end'")


def test_a_dry_run_during_a_freeze_is_not_refused_and_says_the_freeze_would_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, posted: list[dict[str, Any]]
) -> None:
    contexts, prod, endpoints = frozen_prod(tmp_path, monkeypatch)
    result = promote_app.promote(contexts, PromoteRequest("release-1.0.0", dry_run=True))
    assert result.outcome == "planned"
    ((step),) = result.steps
    assert (step.name, step.status) == ("freeze", "blocked") and "frozen by 'year-end'" in step.detail
    assert any(line.startswith("warning: the promotion would be refused: ") for line in prod.events.lines)
    assert endpoints.transfers == [] and prod.entries() == [] and posted == []


def test_promote_with_the_override_proceeds_and_announces_the_override_and_the_promotion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, posted: list[dict[str, Any]]
) -> None:
    contexts, prod, endpoints = frozen_prod(tmp_path, monkeypatch)
    result = promote_app.promote(contexts, PromoteRequest("release-1.0.0"), override_freeze=OVERRIDE.reason)
    assert result.outcome == "succeeded" and [t[:2] for t in endpoints.transfers] == [(DIGEST, "release-1.0.0")]
    assert prod.fake_cluster.serving == {"api": DIGEST}
    assert f'digest: "{DIGEST}"' in (tmp_path / "values-prod.yaml").read_text()
    done, intent, override = prod.entries()
    assert (done.action, done.outcome, done.overrides, intent.overrides) == (
        "promote",
        "succeeded",
        (OVERRIDE,),
        (OVERRIDE,),
    )
    assert override.action == "override"
    overridden, promoted = posted
    assert (overridden["event"], overridden["reason"]) == ("freeze-overridden", OVERRIDE.reason)
    assert (promoted["event"], promoted["release"], promoted["verdict"]) == (
        "promote-succeeded",
        "release-1.0.0",
        "healthy",
    )
    assert (promoted["apps"], promoted["reason"]) == ([{"app": "api", "digest": DIGEST}], OVERRIDE.reason)
