"""Promotion gates as a table, the refusal message, release tag parsing and target selection."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from deployctl.app import promote
from deployctl.config import load
from deployctl.core.errors import UsageError
from deployctl.core.refs import ImageRef, ReleaseTag, Version
from deployctl.ledger.entry import Entry
from deployctl.promotion import gates as promotion
from deployctl.promotion.evidence import Evidence
from deployctl.promotion.facts import Facts
from deployctl.promotion.plan import AppPromotion, PromotionPlan
from deployctl.promotion.request import PromoteRequest

ROOT = Path(__file__).resolve().parents[2]
A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
SHA = "c" * 40


HEALTHY = Entry(
    env="dev", app="api", action="deploy", outcome="succeeded", verdict="healthy", digest=A, time="2026-11-29T10:00:00+00:00",
    ci_run_id="101", id="e1",
)  # fmt: skip
FAILED = Entry(
    env="dev", app="api", action="deploy", outcome="failed", verdict="failed", digest=A, time="2026-11-29T11:00:00+00:00",
    ci_run_id="102", id="e2", message="pod api-1 container api: CrashLoopBackOff",
)  # fmt: skip


def proof(
    *, verified: bool = True, failed: bool = False, ran: timedelta = timedelta(hours=2), running: bool = True
) -> Evidence:
    return Evidence("dev", A, HEALTHY if verified else None, FAILED if failed else None, ran, running)


def facts(**changes: Any) -> Facts:
    base = Facts(
        release=ReleaseTag.parse("release-1.4.0"),
        commit=SHA,
        on_main=True,
        main_ref="origin/main",
        source_env="dev",
        target_env="prod",
        source_image=ImageRef("r.example", "api", tag=SHA),
        source_digest=A,
        evidence=proof(),
        target_version=Version.parse("1.3.0"),
        target_digest=B,
        target_from="ledger",
        target_tag_digest=None,
    )
    return replace(base, **changes)


V = Version.parse
# (case, facts changes, skip_dev_check, allow_downgrade, refused gate names)
GATES: list[tuple[str, dict[str, Any], bool, bool, set[str]]] = [
    ("happy path", {}, False, False, set()),
    ("first promotion ever", {"target_version": None, "target_digest": None}, False, False, set()),
    ("not on main", {"on_main": False, "source_digest": None}, False, False, {"on-main", "image-built"}),
    ("image never built", {"source_digest": None}, False, False, {"image-built"}),
    ("never healthy in dev", {"evidence": proof(verified=False)}, False, False, {"verified-in-source"}),
    ("failed in dev after healthy", {"evidence": proof(failed=True)}, False, False, {"verified-in-source"}),
    (
        "failed in dev: --skip-dev-check does not skip a failure",
        {"evidence": proof(failed=True)},
        True,
        False,
        {"verified-in-source"},
    ),
    ("busy trunk: dev moved on", {"evidence": proof(running=False)}, False, False, set()),
    (
        "soak not met",
        {"evidence": proof(ran=timedelta(minutes=10)), "soak": timedelta(minutes=30)},
        False,
        False,
        {"verified-in-source"},
    ),
    ("soak met", {"evidence": proof(ran=timedelta(minutes=31)), "soak": timedelta(minutes=30)}, False, False, set()),
    ("dev check skipped", {"evidence": proof(verified=False)}, True, False, set()),
    ("downgrade", {"target_version": V("1.5.0")}, False, False, {"newer-than-target"}),
    ("same version, other digest", {"target_version": V("1.4.0")}, False, False, {"newer-than-target"}),
    ("downgrade allowed", {"target_version": V("1.5.0")}, False, True, set()),
    ("same version, same digest (resume)", {"target_version": V("1.4.0"), "target_digest": A}, False, False, set()),
    ("tag taken by another digest", {"target_tag_digest": B}, False, False, {"tag-immutable"}),
    ("tag taken, overrides do not help", {"target_tag_digest": B}, True, True, {"tag-immutable"}),
    ("tag at same digest (resume)", {"target_tag_digest": A}, False, False, set()),
    (
        "already done: dev moved on, no downgrade complaint",
        {"target_tag_digest": A, "target_digest": A, "target_version": V("1.4.0"), "evidence": proof(failed=True)},
        False,
        False,
        set(),
    ),
    (
        "pre-release older than release",
        {"release": ReleaseTag.parse("release-1.3.0-rc.1", allow_prerelease=True)},
        False,
        False,
        {"newer-than-target"},
    ),
]


@pytest.mark.parametrize(("case", "changes", "skip", "downgrade", "refused"), GATES, ids=[g[0] for g in GATES])
def test_gates(case: str, changes: dict[str, Any], skip: bool, downgrade: bool, refused: set[str]) -> None:
    gates = promotion.judge(facts(**changes), skip_dev_check=skip, allow_downgrade=downgrade)
    assert {g.name for g in gates if g.refused} == refused, case
    error = promotion.refusal(gates)
    assert (error is None) == (not refused)


LOCAL = "release-1.4.0 is only in this clone, not on origin: push it first (git push origin release-1.4.0)"
# (case, facts changes, allow_local_tag, refused gate names)
REMOTE_GATES: list[tuple[str, dict[str, Any], bool, set[str]]] = [
    ("tag pushed", {"tag_remote": "release-1.4.0 is on origin"}, False, set()),
    ("no remote: not checked", {"tag_remote": "not checked: the repository has no remote 'origin'"}, False, set()),
    ("tag only local", {"tag_on_remote": False, "tag_remote": LOCAL}, False, {"tag-on-remote"}),
    ("tag only local, allowed", {"tag_on_remote": False, "tag_remote": LOCAL}, True, set()),
    (
        "optional app not rebuilt: no gate",
        {"tag_on_remote": False, "source_digest": None, "optional": True},
        False,
        set(),
    ),
]


@pytest.mark.parametrize(("case", "changes", "allow", "refused"), REMOTE_GATES, ids=[g[0] for g in REMOTE_GATES])
def test_tag_on_remote_gate(case: str, changes: dict[str, Any], allow: bool, refused: set[str]) -> None:
    gates = promotion.judge(facts(**changes), allow_local_tag=allow)
    assert {g.name for g in gates if g.refused} == refused, case
    remote = [g for g in gates if g.name == "tag-on-remote"]
    if changes.get("optional"):
        assert remote == []
        return
    (gate,) = remote
    assert gate.override == "--allow-local-tag"
    assert gate.overridden is (allow and not gate.ok)
    assert gate.message.startswith(changes["tag_remote"])
    error = promotion.refusal(gates)
    if refused:
        assert error is not None and int(error.exit_code) == 4
        assert "tag-on-remote: release-1.4.0 is only in this clone, not on origin" in error.message
        assert error.hint is not None and "--allow-local-tag --reason TEXT" in error.hint
    assert promotion.used("--allow-local-tag", gates) is (allow and not gate.ok)


def test_allow_local_tag_is_an_override_recorded_with_its_reason() -> None:
    request = PromoteRequest("release-1.4.0", allow_local_tag=True, reason="hotfix before the push")
    assert [(o.flag, o.reason) for o in request.overrides()] == [("--allow-local-tag", "hotfix before the push")]
    assert request.gate_overrides() == {"skip_dev_check": False, "allow_downgrade": False, "allow_local_tag": True}


def test_refusal_names_every_failed_gate_and_its_override() -> None:
    gates = promotion.judge(facts(evidence=proof(verified=False), target_version=V("2.0.0")))
    error = promotion.refusal(gates)
    assert error is not None
    assert int(error.exit_code) == 4
    assert "2 promotion checks failed" in error.message
    assert "--skip-dev-check" in error.message
    assert "--allow-downgrade" in error.message
    assert error.hint is not None
    assert "--skip-dev-check" in error.hint
    assert "--allow-downgrade" in error.hint
    gate_data: list[dict[str, Any]] = error.details["gates"]  # type: ignore[assignment]
    assert [g["name"] for g in gate_data] == [
        "on-main",
        "tag-on-remote",
        "image-built",
        "tag-immutable",
        "verified-in-source",
        "newer-than-target",
    ]


def test_verified_in_source_messages_name_the_evidence() -> None:
    (ok,) = [g for g in promotion.judge(facts()) if g.name == "verified-in-source"]
    assert (
        ok.message
        == f"{A} rolled out healthy in dev at {HEALTHY.time} by CI run 101 (entry e1), ran 2 h 0 min (still runs there)"
    )
    (failed,) = [g for g in promotion.judge(facts(evidence=proof(failed=True))) if g.name == "verified-in-source"]
    assert (
        f"failed in dev after its healthy rollout at {HEALTHY.time} by CI run 101 (entry e1): "
        f"at {FAILED.time} by CI run 102 (entry e2), verdict failed: "
    ) in failed.message
    assert "CrashLoopBackOff" in failed.message
    soak = facts(evidence=proof(ran=timedelta(minutes=10)), soak=timedelta(minutes=30))
    (waiting,) = [g for g in promotion.judge(soak) if g.name == "verified-in-source"]
    assert "for 10 min of the 30 min required (promote_soak_minutes: its latest healthy period" in waiting.message
    assert "20 min to go" in waiting.message


def test_immutable_conflict_says_it_cannot_be_overridden() -> None:
    error = promotion.refusal(promotion.judge(facts(target_tag_digest=B)))
    assert error is not None
    assert "immutable" in error.message
    assert error.hint == "tag-immutable cannot be overridden"


def test_image_missing_names_the_tag_looked_for() -> None:
    error = promotion.refusal(promotion.judge(facts(source_digest=None), skip_dev_check=True))
    assert error is not None
    assert f"r.example/api:{SHA}" in error.message
    assert "build-image on main did not push" in error.message


def test_overrides_recorded_only_with_their_reason() -> None:
    request = PromoteRequest("release-1.0.0", skip_dev_check=True, allow_downgrade=True, reason="hotfix")
    assert [(o.flag, o.reason) for o in request.overrides()] == [
        ("--skip-dev-check", "hotfix"),
        ("--allow-downgrade", "hotfix"),
    ]


@pytest.fixture
def config() -> Any:
    return load(ROOT / "pyproject.toml")


@pytest.mark.parametrize("tag", ["release-1.4", "v1.4.0", "release-01.4.0", "release-", "release-1.4.0-rc.1"])
def test_malformed_or_prerelease_tags_are_usage_errors(config: Any, tag: str) -> None:
    env = config.settings.environments["prod"]
    with pytest.raises(UsageError) as caught:
        promote.parse_release(tag, "prod", env)
    assert int(caught.value.exit_code) == 2
    assert "release-<semver>" in (caught.value.hint or "")


def test_target_is_the_environment_with_promote_from(config: Any) -> None:
    assert promote.target_env_name(config, None) == "prod"
    with pytest.raises(UsageError, match="not a promotion target"):
        promote.target_env_name(config, "dev")


def test_plan_text_and_data_carry_every_app_and_one_diff() -> None:
    api, worker = facts(app="api"), facts(app="worker", source_digest=None, optional=True)
    plan = PromotionPlan(
        release=api.release,
        commit=SHA,
        source_env="dev",
        target_env="prod",
        apps=(
            AppPromotion(
                "api",
                api,
                promotion.judge(api),
                ImageRef("r.example", "api", tag="release-1.4.0", digest=A),
                "oci-retag",
                "helm upgrade ...",
            ),
            AppPromotion(
                "worker",
                worker,
                promotion.judge(worker),
                ImageRef("r.example", "worker", tag="release-1.4.0"),
                "skipped",
                "nothing",
            ),
        ),
        values_path=Path("values-prod.yaml"),
        values_diff='-    tag: ""\n+    tag: "release-1.4.0"\n',
    )
    data = plan.data()
    assert (data["commit"], data["release"], data["noop"]) == (SHA, "release-1.4.0", False)
    assert [(a["app"], a["digest"], a["skipped"]) for a in data["apps"]] == [("api", A, False), ("worker", None, True)]
    assert data["apps"][0]["target"]["image"] == f"r.example/api:release-1.4.0@{A}"
    assert {g["app"] for g in data["gates"]} == {"api", "worker"}
    assert [g["name"] for g in data["gates"] if g["app"] == "worker"] == ["image-built"], "an optional app not rebuilt"
    assert data["values"]["diff"].startswith("-    tag")
    text = "\n".join(plan.text())
    assert A in text and "worker: not rebuilt for this commit (optional)" in text
    assert '+    tag: "release-1.4.0"' in text
