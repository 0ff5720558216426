"""Every webhook event (deployctl/notify/events.py), built by its builder, renders in every format a target may
ask for (Slack-compatible and deployctl's JSON): an event added without a title, an icon or a builder fails here,
not in a Slack target at run time."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from deployctl.config.environments import EventKind, NotifyFormat
from deployctl.core.errors import OperationError
from deployctl.core.refs import ImageRef, ReleaseTag
from deployctl.ledger.entry import Override
from deployctl.notify import events
from deployctl.notify.send import SCHEMA, payload
from deployctl.promotion.facts import Facts
from deployctl.promotion.plan import AppPromotion, PromotionPlan

DIGEST = "sha256:" + "a" * 64
RELEASE = ReleaseTag.parse("release-1.4.0")
FACTS = Facts(
    release=RELEASE,
    commit="f" * 40,
    on_main=True,
    main_ref="origin/main",
    source_env="dev",
    target_env="prod",
    source_image=ImageRef("r.example", "api", tag="f" * 40),
    source_digest=DIGEST,
    evidence=None,
    target_version=None,
    target_digest=None,
    target_from="none",
    target_tag_digest=None,
)
PLAN = PromotionPlan(
    release=RELEASE,
    commit="f" * 40,
    source_env="dev",
    target_env="prod",
    apps=(AppPromotion("api", FACTS, (), ImageRef("r.example", "api", tag=str(RELEASE), digest=DIGEST), "copy", ""),),
    values_path=Path("values-prod.yaml"),
    values_diff="",
)
ERROR = OperationError("rollout of api failed: CrashLoopBackOff\npod api-1: exit 1")
FREEZE = Override("--override-freeze", "hotfix")
# One event of each kind, made by its builder: a kind missing here fails test_every_event_has_a_spec_and_a_builder_here.
BUILT = {
    "promote-succeeded": events.promotion_event("promote-succeeded", PLAN, {"GITHUB_REPOSITORY": "acme/api"}),
    "promote-failed": events.promotion_event("promote-failed", PLAN, {}, error=ERROR, freeze=FREEZE),
    "promote-refused": events.promotion_event("promote-refused", PLAN, {}, error=ERROR),
    "deploy-failed": events.deploy_failed("dev", (("api", DIGEST),), ERROR, "hotfix"),
    "lock-taken-over": events.lock_taken_over("prod", "alice@ci-runner (pid 42)"),
    "freeze-overridden": events.freeze_overridden("prod", "deploy", "'weekend'", "hotfix"),
}


def test_every_event_has_a_spec_and_a_builder_here() -> None:
    assert set(events.SPECS) == set(events.EVENTS)
    assert set(BUILT) == set(events.EVENTS)
    assert all(event.kind == kind for kind, event in BUILT.items())


@pytest.mark.parametrize("fmt", get_args(NotifyFormat))
@pytest.mark.parametrize("kind", events.EVENTS)
def test_every_event_renders_in_every_format(kind: EventKind, fmt: NotifyFormat) -> None:
    event = BUILT[kind]
    body = payload(event, fmt)
    if fmt == "json":
        assert body["schema"] == SCHEMA
        assert (body["event"], body["env"], body["summary"]) == (kind, event.env, event.summary)
        assert body["apps"] == [{"app": app, "digest": digest} for app, digest in event.apps]
    else:
        title = events.SPECS[kind].title
        assert body["text"].startswith(f"{event.env}: {title}")
        section = body["blocks"][0]["text"]["text"]
        assert section.startswith(f"{events.SPECS[kind].icon} *{event.env}: {title}*")
        assert event.summary in section


def test_the_builders_say_what_happened() -> None:
    assert BUILT["promote-succeeded"].summary == "release-1.4.0 promoted to prod"
    assert BUILT["promote-succeeded"].changelog_url == f"https://github.com/acme/api/commit/{'f' * 40}"
    assert (BUILT["promote-failed"].verdict, BUILT["promote-failed"].reason) == ("failed", "hotfix")
    assert BUILT["promote-failed"].failure == "rollout of api failed: CrashLoopBackOff"
    assert BUILT["promote-refused"].summary == "release-1.4.0 refused in prod"
    assert BUILT["deploy-failed"].summary == "deploy of api to dev failed"
    assert BUILT["lock-taken-over"].summary == "took over a stale lock: alice@ci-runner (pid 42)"
    assert BUILT["freeze-overridden"].summary == "deploy into prod during 'weekend'"
