"""The whole ``[tool.deployctl]`` table (references between environments and apps checked), and the
loaded configuration with the file it came from."""

# Mutable defaults ({}, []) are safe: pydantic copies them per instance; ruff cannot see that Strict is a
# pydantic model when it comes from another module.
# ruff: noqa: RUF012

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, model_validator

from deployctl.config.apps import App
from deployctl.config.base import Name, Strict
from deployctl.config.environments import Environment
from deployctl.config.order import needs_cycle


class DeployctlConfig(Strict):
    environments: dict[Name, Environment]
    apps: dict[Name, App] = {}
    state_dir: Path = Path(".deployctl")
    main_branch: str = "main"
    # The branch whose pushes plan and apply the terraform-only environments (ECR, state buckets).
    shared_branch: str = "shared-terraform"
    # A new project.version in pyproject.toml on main, once dev is deployed, creates its release tag (ci steps).
    release_on_version_bump: bool = False

    @model_validator(mode="after")
    def _references(self) -> DeployctlConfig:
        problems = []
        for name, env in self.environments.items():
            if env.promote_from is not None and env.promote_from not in self.environments:
                known = ", ".join(sorted(self.environments))
                problems.append(
                    f"environments.{name}.promote_from: unknown environment {env.promote_from!r} (known: {known})"
                )
            if env.promote_from == name:
                problems.append(f"environments.{name}.promote_from: an environment cannot promote from itself")
            if env.deployable and not self.apps:
                problems.append(f"environments.{name}: has a cluster but no [tool.deployctl.apps] are declared")
        for name, app in self.apps.items():
            unknown = [n for n in app.needs if n not in self.apps]
            if unknown:
                known = ", ".join(sorted(self.apps))
                problems.append(f"apps.{name}.needs: unknown app {unknown[0]!r} (known: {known})")
        problems += self._verification()
        cycle = needs_cycle({name: app.needs for name, app in self.apps.items()})
        if cycle:
            problems.append(f"apps: needs form a cycle: {' -> '.join(cycle)} (an app cannot wait for itself)")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _verification(self) -> list[str]:
        """Overrides name known environments; an environment where metric checks run has a metrics API."""
        problems = []
        for name, app in self.apps.items():
            for env_name in app.verify.environments:
                if env_name not in self.environments:
                    known = ", ".join(sorted(self.environments))
                    problems.append(f"apps.{name}.verify.environments.{env_name}: unknown environment (known: {known})")
            for env_name, env in self.environments.items():
                metrics = app.verify.resolved(env_name).metrics
                if env.deployable and metrics and env.metrics is None:
                    problems.append(
                        f"apps.{name}.verify: metric check {metrics[0].name!r} runs in {env_name}, which has no "
                        f"metrics API: set environments.{env_name}.metrics = {{ url = ... }}"
                    )
        return problems


class LoadedConfig(BaseModel):
    """The validated configuration plus where it came from (paths resolve against ``root``)."""

    model_config = ConfigDict(frozen=True)

    path: Path
    settings: DeployctlConfig

    @property
    def root(self) -> Path:
        return self.path.parent

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else self.root / path

    @property
    def state_dir(self) -> Path:
        return self.resolve(self.settings.state_dir)
