"""Where the configuration is: ``--config``, ``$DEPLOYCTL_CONFIG``, or the nearest pyproject.toml upward with a
``[tool.deployctl]`` table; and ``ConfigProblemsError``, every problem found in one file.

No pydantic here: finding the file (and reporting that there is none) costs no model construction.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

CONFIG_ENV_VAR = "DEPLOYCTL_CONFIG"
TABLE = ("tool", "deployctl")


class ConfigProblemsError(Exception):
    """Every problem found in one configuration file (rendered by ``ConfigError``)."""

    def __init__(self, problems: list[str], hint: str | None = None) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
        self.hint = hint  # None: the keys listed are the fix


def find_config(start: Path, explicit: str | None = None) -> Path:
    """The file to load: ``--config``, else ``$DEPLOYCTL_CONFIG``, else the nearest pyproject.toml upward
    that has a ``[tool.deployctl]`` table."""
    chosen = explicit or os.environ.get(CONFIG_ENV_VAR)
    if chosen:
        path, given = Path(chosen), "--config" if explicit else f"${CONFIG_ENV_VAR}"
        if not path.is_file():
            fix = f"pass --config the path of a pyproject.toml with [tool.deployctl], or unset {CONFIG_ENV_VAR}"
            raise ConfigProblemsError([f"{path.absolute()}: configuration file not found (from {given})"], fix)
        return path.resolve()
    for directory in (start.resolve(), *start.resolve().parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file() and _has_table(candidate):
            return candidate
    raise ConfigProblemsError(
        [f"no pyproject.toml with a [tool.deployctl] table in {start.resolve()} or any parent directory"],
        "run deployctl in your repository, pass --config PATH, or add [tool.deployctl] (README: Configuration)",
    )


def _has_table(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except OSError:
        return False
    except tomllib.TOMLDecodeError:
        return "tool.deployctl" in text  # ours, with a syntax error: load() reports its line and column
    return isinstance(data.get("tool"), dict) and "deployctl" in data["tool"]
