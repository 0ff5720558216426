from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deployctl.cli.main import main

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Invoke = Callable[..., Outcome]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the repository's reference configuration in a temp dir."""
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


@pytest.fixture
def invoke(project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """Run the CLI in-process from the project dir, with stdout and stderr kept apart."""
    monkeypatch.chdir(project)
    monkeypatch.delenv("DEPLOYCTL_CONFIG", raising=False)
    monkeypatch.delenv("DEPLOYCTL_SANDBOX", raising=False)

    def run(*args: str) -> Outcome:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run
