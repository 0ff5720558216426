"""Parse and validate a configuration file: TOML errors with their line and column, validation errors with
the file, the dotted key path, the rule and the fix (unknown keys with the closest known one)."""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from deployctl.config.locate import TABLE, ConfigProblemsError
from deployctl.config.settings import DeployctlConfig, LoadedConfig


def load(path: Path, overrides: Mapping[str, Any] | None = None) -> LoadedConfig:
    """Parse and validate ``path``; ``overrides`` (a nested mapping) is merged over the table first
    (the sandbox uses this to point environments at local services)."""
    label = path.name
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigProblemsError([f"{path}: cannot read: {exc.strerror}"]) from None
    except tomllib.TOMLDecodeError as exc:  # "Expected ... (at line 3, column 5)": the position first
        at = re.search(r" \(at line (\d+), column (\d+)\)$", str(exc))
        where, what = (f"{path}:{at[1]}:{at[2]}", str(exc)[: at.start()]) if at else (str(path), str(exc))
        raise ConfigProblemsError([f"{where}: invalid TOML: {what}"], f"fix the syntax there ({path.name})") from None
    table: Any = data
    for key in TABLE:
        table = table.get(key) if isinstance(table, dict) else None
    if not isinstance(table, dict):
        raise ConfigProblemsError([f"{path}: no [tool.deployctl] table"], "add one (README: Configuration)")
    if overrides:
        table = _merge(table, overrides)
    try:
        settings = DeployctlConfig.model_validate(table)
    except ValidationError as exc:
        raise ConfigProblemsError([_describe(label, error) for error in exc.errors()]) from None
    return LoadedConfig(path=path, settings=settings)


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(label: str, error: Any) -> str:
    loc = [str(part) for part in error["loc"]]
    kind = error["type"]
    where = ".".join([*TABLE, *loc]) if loc else ".".join(TABLE)
    if kind == "extra_forbidden":
        known = _known_keys(loc[:-1])
        close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
        fix = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(sorted(known))}"
        return f"{label}: {where}: unknown key ({fix})"
    if kind == "missing":
        return f"{label}: {where}: required key is missing (add it)"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern", "")
        message = f"{error.get('input')!r} does not match the expected form {pattern}"
    return f"{label}: {where}: {message}"


def _known_keys(loc: list[str]) -> list[str]:
    """The field names of the model at ``loc`` (dict keys such as environment names are skipped)."""
    model: Any = DeployctlConfig
    for part in loc:
        fields = getattr(model, "model_fields", None)
        if fields is None:
            break
        # a part that is not a field is a dict key (an environment or app name): stay on the value model
        if part in fields:
            model = _model_of(fields[part].annotation)
    fields = getattr(model, "model_fields", {})
    return list(fields)


def _model_of(annotation: Any) -> Any:
    """Find the BaseModel inside ``X | None`` or ``dict[str, X]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None
