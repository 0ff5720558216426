"""`make install` builds the venv from the lock file: a venv built from another lock (an old checkout, a restored
cache, anything someone left in .venv) is emptied and built again, never installed over (issue 26).

The real Makefile runs in a copy of the repository's files; poetry is a stub that records its calls (installing
the real dependencies would take a minute and the network, and is not what is under test: what survives is).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

STUB = """#!/bin/sh
echo "$@" >> "$(dirname "$0")/calls"
"""


def _project(tmp_path: Path) -> tuple[Path, Path]:
    project = tmp_path / "project"
    (project / ".ci").mkdir(parents=True)
    (project / "deployctl").mkdir()
    (project / "deployctl" / "__init__.py").write_text("")
    shutil.copy(REPO / "Makefile", project / "Makefile")
    shutil.copy(REPO / ".ci" / "poetry-requirements.txt", project / ".ci" / "poetry-requirements.txt")
    (project / "pyproject.toml").write_text('[project]\nname = "x"\n')
    (project / "poetry.lock").write_text("# lock 1\n")
    poetry = tmp_path / "poetry"
    (poetry / "bin").mkdir(parents=True)
    (poetry / "bin" / "poetry").write_text(STUB)
    (poetry / "bin" / "poetry").chmod(0o755)
    (poetry / "installed").write_text("")
    return project, poetry


def _install(project: Path, poetry: Path) -> list[str]:
    calls = poetry / "bin" / "calls"
    calls.unlink(missing_ok=True)
    subprocess.run(
        [
            "make",
            "-s",
            "install",
            f"PYTHON={sys.executable}",
            f"POETRY={poetry / 'bin' / 'poetry'}",
            f"POETRY_STAMP={poetry / 'installed'}",  # poetry "is installed": the stub
        ],
        cwd=project,
        env={"PATH": os.environ["PATH"], "HOME": str(project.parent)},
        check=True,
        capture_output=True,
        timeout=120,
    )
    return calls.read_text().splitlines() if calls.exists() else []


def test_another_lock_never_installs_over_what_is_in_the_venv(tmp_path: Path) -> None:
    project, poetry = _project(tmp_path)
    assert _install(project, poetry) == ["install --no-interaction --only main --compile"]
    assert _install(project, poetry) == [], "the same lock: nothing to do"

    planted = project / ".venv" / "lib" / "planted.py"
    planted.write_text("print('left by an older lock, a restored cache, or anyone')\n")
    (project / "poetry.lock").write_text("# lock 2\n")
    assert _install(project, poetry) == ["install --no-interaction --only main --compile"]
    assert not planted.exists(), "the venv was emptied before the new lock was installed"
    assert (project / ".venv" / "bin" / "python").exists()


def test_the_venv_is_named_by_the_lock_content_not_its_date(tmp_path: Path) -> None:
    """A checkout (or a cache restore) changes file dates, not content: the same lock is not installed again."""
    project, poetry = _project(tmp_path)
    _install(project, poetry)
    later = (project / ".venv").stat().st_mtime + 60
    os.utime(project / "poetry.lock", (later, later))  # newer than anything in .venv
    assert _install(project, poetry) == []
