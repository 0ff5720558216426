"""What is in a release: commits between the one prod runs and the release commit, from a real git
repository, with PR numbers and the commits whose image failed in dev."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from deployctl.adapters import git
from deployctl.ledger.entry import Entry
from deployctl.release.changelog import changelog, pr_number
from deployctl.runner import ProcessRunner


@pytest.mark.parametrize(
    ("subject", "pr"),
    [
        ("Merge pull request #412 from acme/fix-login", 412),
        ("fix: retry the queue connection (#98)", 98),
        ("fix: retry (#98) and more", None),
        ("bump version", None),
    ],
)
def test_pr_number(subject: str, pr: int | None) -> None:
    assert pr_number(subject) == pr


def run_git(repo: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "Ada",
        "GIT_AUTHOR_EMAIL": "a@x",
        "GIT_COMMITTER_NAME": "Ada",
        "GIT_COMMITTER_EMAIL": "a@x",
    }
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        env={**env, "PATH": "/usr/bin:/bin"},
    ).stdout.strip()


def test_changelog_lists_exactly_the_commits_between_two_releases(tmp_path: Path) -> None:
    run_git(tmp_path, "init", "-q", "-b", "main")
    shas = []
    for subject in ("first", "feat: login (#1)", "fix: crash on start (#2)", "fix: the crash, really (#3)"):
        run_git(tmp_path, "commit", "-q", "--allow-empty", "-m", subject)
        shas.append(run_git(tmp_path, "rev-parse", "HEAD"))
    base, head = shas[1], shas[3]
    commits, total = git.log(ProcessRunner(), tmp_path, base=base, head=head, limit=50)
    failed = Entry(
        env="dev",
        app="api",
        action="deploy",
        outcome="failed",
        verdict="failed",
        commit=shas[2],
        ci_run_id="7",
        id="x1",
    )
    log = changelog(commits, total, base=base, head=head, source_entries=[failed], app="api")

    assert [c.sha for c in log.changes] == [shas[3], shas[2]], "newest first, base excluded, head included"
    assert [(c.subject, c.author, c.pr) for c in log.changes] == [
        ("fix: the crash, really (#3)", "Ada", 3),
        ("fix: crash on start (#2)", "Ada", 2),
    ]
    assert log.total == 2
    (warning,) = log.warnings
    assert shas[2][:12] in warning and "failed in the source" in warning and "CI run 7" in warning
    text = "\n".join(log.text())
    assert f"2 commit(s) {base[:12]}..{head[:12]}" in text
    assert "(PR #3) - Ada" in text

    first, total = git.log(ProcessRunner(), tmp_path, base=None, head=head, limit=2)
    assert total == 4 and len(first) == 2, "a first promotion lists history, newest first, limited"
    assert "newest 2 shown" in "\n".join(
        changelog(first, total, base=None, head=head, source_entries=[], app="api").text()
    )
