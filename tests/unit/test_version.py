from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

from deployctl import __version__


def test_version_matches_pyproject_and_installed_metadata() -> None:
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert __version__ == pyproject["project"]["version"] == version("deployctl")
