"""``deployctl.config`` is a package by concern: every public name is still importable from it, and the parts
that need no models (finding the file, the routing keys) import no pydantic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import deployctl.config
from deployctl import config

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", deployctl.config.__all__)
def test_every_public_name_is_importable_from_the_package(name: str) -> None:
    value = getattr(config, name)
    assert value is not None
    namespace: dict[str, object] = {}
    exec(f"from deployctl.config import {name}", namespace)  # noqa: S102 (the statement users write)
    assert namespace[name] is value


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = config.nope


@pytest.mark.parametrize(
    "statement",
    [
        "from deployctl.config import find_config, ConfigProblemsError, CONFIG_ENV_VAR",
        "from deployctl.config.routing import read_routing",
        "from deployctl.config import deploy_order",
    ],
)
def test_what_needs_no_models_imports_no_pydantic(statement: str) -> None:
    code = f"import sys\n{statement}\nprint('pydantic' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout.strip() == "False"
