"""git in a repository of the test's own, hermetic: a fixed identity, no environment of the user's (their git
configuration and hooks never apply). The lab's tests use ``tests.lab.world.git`` (the process's environment)."""

from __future__ import annotations

import subprocess
from pathlib import Path

IDENTITY = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}


def git(repo: Path, *args: str) -> str:
    """git in ``repo`` as ``IDENTITY``, with only the system's PATH; its output, stripped."""
    done = subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        env={**IDENTITY, "PATH": "/usr/bin:/bin"},
    )
    return done.stdout.strip()
