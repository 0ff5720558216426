"""git.tags / create_tag / push_tag (the version-bump route's tag) against real git and a bare origin."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from deployctl.adapters import git
from deployctl.core.errors import CommandFailedError
from deployctl.runner import ProcessRunner

pytestmark = pytest.mark.lab

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "ci",
    "GIT_AUTHOR_EMAIL": "ci@example.com",
    "GIT_COMMITTER_NAME": "ci",
    "GIT_COMMITTER_EMAIL": "ci@example.com",
}


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], env=ENV, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_a_release_tag_is_created_and_pushed_once_and_never_moved(tmp_path: Path) -> None:
    origin, work = tmp_path / "origin.git", tmp_path / "work"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    subprocess.run(["git", "clone", "-q", str(origin), str(work)], env=ENV, check=True, capture_output=True)
    (work / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "1.4.0"\n')
    _git(work, "add", ".")
    _git(work, "commit", "-q", "-m", "1.4.0")
    _git(work, "push", "-q", "origin", "HEAD:main")
    first = _git(work, "rev-parse", "HEAD")
    runner = ProcessRunner(base_env=ENV)

    assert git.tags(runner, work, "release-") == []
    git.create_tag(runner, work, "release-1.4.0", first, "release 1.4.0")
    git.push_tag(runner, work, "release-1.4.0")
    assert _git(origin, "rev-parse", "release-1.4.0^{commit}") == first
    assert _git(origin, "cat-file", "-t", "release-1.4.0") == "tag", "annotated"
    _git(work, "tag", "v2", first)
    assert git.tags(runner, work, "release-") == ["release-1.4.0"]

    # Another clone made the same tag on another commit: neither the local tag nor the remote one moves.
    (work / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "1.4.1"\n')
    _git(work, "commit", "-q", "-am", "1.4.1")
    second = _git(work, "rev-parse", "HEAD")
    with pytest.raises(CommandFailedError):
        git.create_tag(runner, work, "release-1.4.0", second, "again")
    _git(work, "tag", "-d", "release-1.4.0")
    git.create_tag(runner, work, "release-1.4.0", second, "elsewhere")
    with pytest.raises(CommandFailedError):
        git.push_tag(runner, work, "release-1.4.0")
    assert _git(origin, "rev-parse", "release-1.4.0^{commit}") == first, "the remote tag did not move"
