"""`deployctl ci release-tag`: the version-bump route, against a real git repository and a bare origin."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from deployctl.cli.main import main

REPO = Path(__file__).resolve().parents[2]


def git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        env={**env, "PATH": "/usr/bin:/bin"},
    ).stdout.strip()


def run(repo: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    capsys.readouterr()
    code = main(["--config", str(repo / "pyproject.toml"), "-o", "json", "ci", "release-tag", *args])
    return code, json.loads(capsys.readouterr().out)


def test_a_new_version_on_main_is_tagged_once_and_pushed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo, origin = tmp_path / "repo", tmp_path / "origin.git"
    repo.mkdir()
    (repo / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text())
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "0.1.0")
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "fetch", "-q", "origin")

    code, out = run(repo, capsys)
    assert (code, out["release"], out["pushed"]) == (0, "release-0.1.0", False)
    assert git(origin, "tag", "--list") == "", "without --push nothing is created"
    code, out = run(repo, capsys, "--push")
    assert (code, out["release"], out["pushed"]) == (0, "release-0.1.0", True)
    assert git(origin, "rev-parse", "release-0.1.0^{commit}") == git(repo, "rev-parse", "HEAD")
    code, out = run(repo, capsys, "--push")
    assert (code, out["release"], out["pushed"]) == (0, None, False), "the same version is not released twice"

    git(repo, "checkout", "-q", "-b", "side")
    text = (repo / "pyproject.toml").read_text().replace('version = "0.1.0"', 'version = "0.2.0"', 1)
    (repo / "pyproject.toml").write_text(text)
    git(repo, "commit", "-q", "-am", "0.2.0 off main")
    code, out = run(repo, capsys, "--push")
    assert code == 4 and "not on origin/main" in str(out["error"])
    assert "release-0.2.0" not in git(origin, "tag", "--list")
