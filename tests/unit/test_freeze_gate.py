"""The change-window check deploy, promote and apply call (app/base.py ``require_window``) on a fake context:
inside a window the action is refused with exit 4 naming the window and its end; outside nothing happens;
``--override-freeze --reason`` proceeds and is recorded in the ledger."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deployctl.app.steps.freeze import OVERRIDE_FREEZE, require_window
from deployctl.config import load
from deployctl.core.errors import ExitCode, PolicyError, UsageError
from deployctl.ledger.entry import Override
from deployctl.notify.events import Event
from deployctl.runner import ProcessRunner
from tests.unit.fakes import FakeContext, FakeS3
from tests.unit.test_lock import planted

CONFIG = """
[tool.deployctl.apps.api]
chart = "charts/api"
release = "api"
image = { registry = "registry.example:5000", repository = "api" }

[tool.deployctl.environments.prod]
aws = { region = "us-east-1" }
terraform = { root = "tf", backend = { bucket = "acme-tfstate", key = "prod/terraform.tfstate", region = "us-east-1" } }
cluster = { kubeconfig = "kubeconfig" }
namespace = "api"
values = "values-prod.yaml"
freeze = { timezone = "Europe/Berlin", weekly = { weekend = "fri 16:00 - mon 08:00" }, dated = { bad = "%s" } }
notify = [{ url_env = "DEPLOYCTL_TEST_UNSET_HOOK" }]
"""
FRIDAY_EVENING = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)  # 18:00 in Berlin
WEDNESDAY = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)


def prod(tmp_path: Path, dated: str = "2026-01-01 - 2026-01-02: new year") -> FakeContext:
    (tmp_path / "pyproject.toml").write_text(CONFIG % dated)
    return FakeContext(load(tmp_path / "pyproject.toml"), "prod", ProcessRunner(), s3=FakeS3())


def test_outside_every_window_nothing_happens(tmp_path: Path) -> None:
    ctx = prod(tmp_path)
    assert require_window(ctx, "deploy", None, now=WEDNESDAY) is None
    assert require_window(ctx, "deploy", "a reason nobody needs", now=WEDNESDAY) is None
    assert ctx.entries() == [] and ctx.events.lines == []


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_inside_a_window_the_action_is_refused_naming_the_window_and_its_end(
    tmp_path: Path, reason: str | None
) -> None:
    ctx = prod(tmp_path)
    with pytest.raises(PolicyError) as refused:
        require_window(ctx, "promote", reason, now=FRIDAY_EVENING)
    assert refused.value.exit_code == ExitCode.REFUSED
    assert int(refused.value.exit_code) == 4
    assert refused.value.message == (
        "promote into prod refused: prod is frozen by 'weekend' (Fri 2026-11-20 16:00 Europe/Berlin (15:00 UTC) to "
        "Mon 2026-11-23 08:00 Europe/Berlin (07:00 UTC)); ends Mon 2026-11-23 08:00 Europe/Berlin (07:00 UTC)"
    )
    assert refused.value.hint is not None and "--override-freeze --reason TEXT" in refused.value.hint
    assert refused.value.details["freeze"]["until"] == "2026-11-23T07:00:00+00:00"  # type: ignore[index]
    assert ctx.entries() == [], "a refusal records nothing"


def test_an_override_proceeds_and_is_recorded_in_the_ledger(tmp_path: Path) -> None:
    ctx = prod(tmp_path)
    override = require_window(ctx, "deploy", "  hotfix for INC-42 ", now=FRIDAY_EVENING)
    assert override == Override(OVERRIDE_FREEZE, "hotfix for INC-42")
    (recorded,) = ctx.entries()
    assert (recorded.action, recorded.app, recorded.outcome) == ("override", "*", "succeeded")
    assert recorded.overrides == (Override("--override-freeze", "hotfix for INC-42"),)
    assert recorded.message == "deploy during the freeze 'weekend' (ends 2026-11-23T07:00:00+00:00)"
    warnings = [line for line in ctx.events.lines if line.startswith("warning:")]
    assert warnings[0].startswith("warning: deploy into prod during a freeze (frozen by 'weekend'")
    assert warnings[0].endswith("overridden: hotfix for INC-42")
    # the freeze-overridden announcement went to the configured webhook, whose variable is not set: said, not raised
    assert warnings[1] == (
        "warning: freeze-overridden: notification to $DEPLOYCTL_TEST_UNSET_HOOK not delivered: "
        "$DEPLOYCTL_TEST_UNSET_HOOK is not set: skipped"
    )


def test_an_impossible_window_is_a_configuration_error(tmp_path: Path) -> None:
    ctx = prod(tmp_path, dated="2026-12-03 - 2026-12-01: backwards")
    with pytest.raises(UsageError, match=r"environments\.prod\.freeze\.dated\.bad: ends \(2026-12-01\) before"):
        require_window(ctx, "apply", None, now=WEDNESDAY)


def test_an_announcement_that_breaks_is_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = prod(tmp_path)

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("a bug in a sender")

    monkeypatch.setattr("deployctl.notify.send.send", broken)
    assert ctx.announce(Event("deploy-failed", "prod", "deploy of api failed")) == []
    assert ctx.events.lines == ["warning: notifications of prod failed: RuntimeError: a bug in a sender"]


def test_taking_over_a_stale_lock_is_said_and_announced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = prod(tmp_path)
    stale = replace(planted("stale0"), env="prod")
    ctx.s3.objects[(ctx.lock.bucket, ctx.lock.key)] = json.dumps(asdict(stale)).encode()
    ctx.s3.modified[(ctx.lock.bucket, ctx.lock.key)] = ctx.s3.clock() - timedelta(minutes=3)  # by S3's clock
    sent: list[Event] = []

    def send(_targets: object, event: Event) -> list[object]:
        sent.append(event)
        return []

    monkeypatch.setattr("deployctl.notify.send.send", send)
    with ctx.locked("deploy prod") as held:
        assert held.id != "stale0"
        assert json.loads(ctx.s3.objects[(ctx.lock.bucket, ctx.lock.key)])["id"] == held.id  # the lock is ours now
    assert [e.kind for e in sent] == ["lock-taken-over"]
    assert sent[0].env == "prod" and "stale0" not in sent[0].summary and "another-host" in sent[0].summary
    assert any(line.startswith("warning: took over a stale lock of prod") for line in ctx.events.lines)
