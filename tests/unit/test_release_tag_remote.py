"""A release tag only this clone has is refused (exit 4) unless --allow-local-tag --reason: git.tag_on_remote
against real repositories (a bare origin), and the promote use case with the fake contexts of test_use_cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployctl.adapters import git as git_adapter
from deployctl.app import promote as promote_app
from deployctl.core.errors import PolicyError, UsageError
from deployctl.promotion.request import PromoteRequest
from deployctl.runner import ProcessRunner
from tests.unit.fakes import FakeContext
from tests.unit.test_use_cases import git, promote_world, repo

__all__ = ["repo"]  # the fixture, used by name


def _origin(tmp_path: Path, work: Path) -> Path:
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    git(work, "remote", "add", "origin", str(origin))
    git(work, "push", "-q", "origin", "main")
    return origin


def test_tag_on_remote_reads_the_remote(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    git(work, "commit", "-q", "--allow-empty", "-m", "one")
    git(work, "tag", "-a", "release-1.0.0", "-m", "r")
    commit = git(work, "rev-parse", "HEAD")
    runner = ProcessRunner()

    assert git_adapter.tag_on_remote(runner, work, "release-1.0.0", commit) == (
        True,
        "not checked: the repository has no remote 'origin'",
    )
    origin = _origin(tmp_path, work)
    ok, why = git_adapter.tag_on_remote(runner, work, "release-1.0.0", commit)
    assert not ok and why.startswith("release-1.0.0 is only in this clone, not on origin: push it first")
    git(work, "push", "-q", "origin", "release-1.0.0")
    assert git_adapter.tag_on_remote(runner, work, "release-1.0.0", commit) == (True, "release-1.0.0 is on origin")

    git(work, "commit", "-q", "--allow-empty", "-m", "two")  # a lightweight tag elsewhere on the remote
    git(work, "tag", "release-1.0.1")
    git(work, "push", "-q", "origin", "release-1.0.1")
    ok, why = git_adapter.tag_on_remote(runner, work, "release-1.0.1", commit)
    assert not ok and "names " + commit[:12] + " here but " in why, "the remote's tag names another commit"

    git(work, "remote", "set-url", "origin", str(tmp_path / "gone.git"))
    ok, why = git_adapter.tag_on_remote(runner, work, "release-1.0.0", commit)
    assert not ok and why.startswith("cannot check that release-1.0.0 is on origin: ")
    assert origin.is_dir()


def test_promote_refuses_a_tag_only_this_clone_has(
    repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    contexts, _, endpoints = promote_world(repo, monkeypatch)
    _origin(tmp_path_factory.mktemp("remote"), repo)  # origin has main, not the release tag

    plan, *_ = promote_app.plan(contexts, PromoteRequest("release-1.0.0", dry_run=True))
    gate = next(g for g in plan.gates if g.name == "tag-on-remote")
    assert not gate.ok and "only in this clone" in gate.message, "the dry run shows it"
    with pytest.raises(PolicyError) as caught:
        promote_app.promote(contexts, PromoteRequest("release-1.0.0"))
    assert int(caught.value.exit_code) == 4
    assert "tag-on-remote: release-1.0.0 is only in this clone, not on origin" in caught.value.message
    assert caught.value.hint is not None and "--allow-local-tag" in caught.value.hint
    assert endpoints.transfers == [], "a refusal changes nothing"

    request = PromoteRequest("release-1.0.0", allow_local_tag=True, reason="origin is down; pushing after")
    result = promote_app.promote(contexts, request)
    assert result.outcome == "succeeded"
    prod = contexts["prod"]
    assert isinstance(prod, FakeContext)
    entry, _ = prod.entries()
    assert [(o.flag, o.reason) for o in entry.overrides] == [("--allow-local-tag", "origin is down; pushing after")]


def test_allow_local_tag_needs_a_reason(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    contexts, _, _ = promote_world(repo, monkeypatch)
    with pytest.raises(UsageError, match="--allow-local-tag needs --reason TEXT"):
        promote_app.plan(contexts, PromoteRequest("release-1.0.0", allow_local_tag=True))
