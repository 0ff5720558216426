"""`make demo` as a test: the whole story against the real tools, plus the JSON contract of the
commands it drives (deploy, promote, status, history, apply, sandbox)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from deployctl.sandbox import demo

pytestmark = pytest.mark.lab

SCHEMA_KEYS = {"schema", "command", "ok"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo") / "work"


@pytest.fixture(scope="module")
def story(workdir: Path) -> tuple[demo.DemoResult, str]:
    out = io.StringIO()
    result = demo.run(workdir, out=out)
    return result, out.getvalue()


def test_prod_ends_on_the_fix_and_never_ran_the_broken_build(story: tuple[demo.DemoResult, str]) -> None:
    result, _ = story
    assert result.prod_digest == result.digests["C"]
    assert result.prod_worker_digest == result.worker_digests["C"], "one tag released both apps"
    assert len(set(result.digests.values())) == 3
    assert any(e["digest"] == result.digests["B"] and e["outcome"] == "failed" for e in result.dev_history)
    assert not any(e["digest"] == result.digests["B"] for e in result.prod_history)
    releases = [e["release"] for e in result.prod_history if e["action"] == "promote" and e["outcome"] == "succeeded"]
    assert releases[:2] == ["release-0.1.1", "release-0.1.0"]  # newest first


def test_plan_joins_terraform_and_the_helm_diff(story: tuple[demo.DemoResult, str]) -> None:
    result, _ = story
    plan = result.documents["plan"]
    assert plan["terraform"]["summary"]["add"] == 0  # dev was just applied
    assert plan["helm"] is not None, plan["helm_error"]
    assert [a["app"] for a in plan["helm"]["apps"]] == ["api"]
    assert plan["helm"]["apps"][0]["installed"] is True
    assert plan["changes"] is False  # deployed from the same values and digest: no drift


def test_broken_rollout_is_detected_in_seconds(story: tuple[demo.DemoResult, str]) -> None:
    result, _ = story
    assert result.broken_detected_seconds is not None
    assert result.broken_detected_seconds < 30  # helm --wait would sit for minutes


def test_story_is_narrated_with_timings(story: tuple[demo.DemoResult, str]) -> None:
    _, text = story
    for line in (
        "deployctl apply dev --auto-approve",
        "deployctl deploy dev (commit B)",
        "FAILED fast",
        "rolled forward",
    ):
        assert line in text
    assert "$ deployctl history prod" in text


@pytest.mark.parametrize(
    ("command", "keys"),
    [
        ("deploy", {"env", "apps", "skipped"}),
        ("promote", {"dry_run", "outcome", "plan", "steps", "transfers"}),
        ("status", {"env", "apps"}),
        ("plan", {"env", "changes", "terraform", "helm", "helm_error"}),
        ("history", {"env", "entries"}),
        ("apply", {"env", "applied", "summary", "resource_changes"}),
        ("sandbox up", {"running", "healthy", "moto_url", "registries", "kubeconfig", "components"}),
        ("sandbox env", {"env"}),
    ],
)
def test_json_contract(story: tuple[demo.DemoResult, str], command: str, keys: set[str]) -> None:
    result, _ = story
    document = result.documents[command]
    assert document["schema"] == "deployctl/v1"
    assert SCHEMA_KEYS | keys <= set(document)
    if command == "deploy":  # one object per app
        app_keys = {"app", "release", "namespace", "image", "git_sha", "revision", "outcome", "duration_seconds"}
        assert all(app_keys <= set(app) for app in document["apps"])


def test_demo_cleans_up_its_clone_and_sandbox(story: tuple[demo.DemoResult, str], workdir: Path) -> None:
    result, _ = story
    assert result.steps  # the story ran
    assert not workdir.exists()  # clone, origin and sandbox state removed (the sandbox was stopped first)
