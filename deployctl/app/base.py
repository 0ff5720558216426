"""What every use case acting on one environment receives."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from deployctl.config import App, Environment, LoadedConfig
from deployctl.errors import UsageError
from deployctl.model import ImageRef
from deployctl.runner import Runner


class Reporter(Protocol):
    """Progress for humans on stderr (the console implements it)."""

    def progress(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...

    def phase(self, name: str) -> AbstractContextManager[None]: ...


@dataclass(frozen=True)
class Target:
    """One environment of one configuration, with the runner and reporter to act on it."""

    config: LoadedConfig
    name: str
    runner: Runner
    reporter: Reporter

    @property
    def env(self) -> Environment:
        return self.config.settings.environments[self.name]

    def apps(self, only: str | None = None) -> Iterator[tuple[str, App]]:
        """The apps to act on: all, or the one named (unknown names are a usage error)."""
        apps = self.config.settings.apps
        if only is not None and only not in apps:
            raise UsageError(f"unknown app {only!r}", f"known apps: {', '.join(apps) or '(none declared)'}")
        for name, app in apps.items():
            if only is None or name == only:
                yield name, app

    def app(self, requested: str | None) -> tuple[str, App]:
        return pick_app(self.config, requested)

    def require_deployable(self) -> None:
        if not self.env.deployable:
            deployable = [n for n, e in self.config.settings.environments.items() if e.deployable]
            raise UsageError(
                f"environment {self.name!r} has no cluster (it is terraform-only)",
                f"deployable environments: {', '.join(deployable)}",
            )


def pick_app(config: LoadedConfig, requested: str | None) -> tuple[str, App]:
    """The app a command acts on: the one named, or the only one configured."""
    apps = config.settings.apps
    if requested is None:
        if len(apps) != 1:
            known = ", ".join(apps) or "(none: add [tool.deployctl.apps.NAME])"
            raise UsageError(f"{len(apps)} apps are configured: say which one", f"pass --app (one of: {known})")
        requested = next(iter(apps))
    if requested not in apps:
        raise UsageError(f"unknown app {requested!r}", f"known apps: {', '.join(apps) or '(none declared)'}")
    return requested, apps[requested]


def image_for(app: App, env: Environment, *, tag: str | None = None, digest: str | None = None) -> ImageRef:
    """Where ``env`` keeps ``app``'s images: the environment's own registry when it has one."""
    return ImageRef(env.image_registry or app.image.registry, app.image.repository, tag=tag, digest=digest)
