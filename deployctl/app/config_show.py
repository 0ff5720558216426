"""``deployctl config show [ENV]``: the resolved configuration."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deployctl.config import LoadedConfig


@dataclass(frozen=True)
class ConfigShowResult:
    """The resolved configuration ``deployctl config show`` prints."""

    path: str
    environments: Mapping[str, Any]
    apps: Mapping[str, Any]
    command: str = "config show"

    def data(self) -> Mapping[str, Any]:
        return {"path": self.path, "environments": self.environments, "apps": self.apps}

    def text(self) -> Sequence[str]:
        lines = [f"# {self.path}"]
        for title, section in (("environments", self.environments), ("apps", self.apps)):
            for name, body in section.items():
                lines.append(f"[{title}.{name}]")
                lines.extend(_flatten(body, "  "))
        return lines


def _flatten(body: Mapping[str, Any], indent: str, prefix: str = "") -> list[str]:
    lines = []
    for key, value in body.items():
        if isinstance(value, Mapping):
            lines.extend(_flatten(value, indent, f"{prefix}{key}."))
        elif value is not None and value != {}:
            lines.append(f"{indent}{prefix}{key} = {value}")
    return lines


def show(config: LoadedConfig, env: str | None = None) -> ConfigShowResult:
    """The configuration as loaded (paths resolved); secrets are masked by the console's redactor."""
    settings = config.settings
    names = [env] if env else list(settings.environments)
    environments = {name: settings.environments[name].model_dump(mode="json") for name in names}
    apps = {name: app.model_dump(mode="json") for name, app in settings.apps.items()}
    return ConfigShowResult(path=str(config.path), environments=environments, apps=apps)
