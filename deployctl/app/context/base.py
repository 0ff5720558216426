"""The part of an environment's context every other part uses: its settings, apps and clusters, and its AWS session
(one AssumeRole per command, a regional session per region)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from deployctl.adapters.aws import AwsSession, RegionalSession
from deployctl.config import App, Environment, LoadedConfig
from deployctl.console import Reporter
from deployctl.core.errors import UsageError
from deployctl.ledger.lock import EnvironmentLock, Lease
from deployctl.ledger.store import Ledger
from deployctl.rollout import waves
from deployctl.runner import Runner

if TYPE_CHECKING:
    from deployctl.adapters.registry import Endpoint


class ContextBase:
    """An environment's settings and its AWS session, for one command (``EnvContext`` builds on it)."""

    def __init__(
        self, config: LoadedConfig, name: str, runner: Runner, reporter: Reporter, *, aws: AwsSession | None = None
    ) -> None:
        envs = config.settings.environments
        if name not in envs:
            raise UsageError(f"unknown environment {name!r}", f"known environments: {', '.join(envs)}")
        self.config = config
        self.name = name
        self.runner = runner
        self.reporter = reporter
        self._aws = aws
        self._regional: dict[str, AwsSession] = {}
        self._lock: EnvironmentLock | None = None
        self._lease: Lease | None = None  # while ``locked()``: what every write checks first (``fence``)
        self._ledger: Ledger | None = None
        self._warned: set[str] = set()  # the ledger's warnings, each said once per command
        self._endpoints: dict[tuple[str, str], Endpoint] = {}
        self._head: str | None = None
        self._helm_major: int | None = None
        # The apps of a `needs` level and the clusters of a wave roll out from threads: what is built on first use
        # is built once (one AssumeRole, one ledger, one endpoint per repository).
        self._guard = threading.RLock()

    # ---------------------------------------------------------------- settings

    @property
    def env(self) -> Environment:
        return self.config.settings.environments[self.name]

    def apps(self, only: str | None = None) -> list[tuple[str, App]]:
        """The apps to act on: all, or the one named (unknown names are a usage error)."""
        apps = self.config.settings.apps
        if only is not None and only not in apps:
            raise UsageError(f"unknown app {only!r}", f"known apps: {', '.join(apps) or '(none declared)'}")
        return [(name, app) for name, app in apps.items() if only is None or name == only]

    def app(self, requested: str | None) -> tuple[str, App]:
        """The app a command acts on: the one named, or the only one configured."""
        apps = self.config.settings.apps
        if requested is None:
            if len(apps) != 1:
                known = ", ".join(apps) or "(none: add [tool.deployctl.apps.NAME])"
                raise UsageError(f"{len(apps)} apps are configured: say which one", f"pass --app (one of: {known})")
            requested = next(iter(apps))
        return self.apps(requested)[0]

    def require_deployable(self) -> None:
        if not self.env.deployable:
            deployable = [n for n, e in self.config.settings.environments.items() if e.deployable]
            raise UsageError(
                f"environment {self.name!r} has no cluster (it is terraform-only)",
                f"deployable environments: {', '.join(deployable)}",
            )

    @property
    def namespace(self) -> str:
        self.require_deployable()
        return str(self.env.namespace)

    def targets(self) -> tuple[waves.Target, ...]:
        """The clusters a rollout reaches, in wave order (one target named None: the environment's one cluster)."""
        return waves.targets(self.env)

    @property
    def several(self) -> bool:
        """Several clusters (``clusters``): results and ledger entries name each one."""
        return bool(self.env.clusters)

    # ---------------------------------------------------------------- AWS, lock, ledger

    @property
    def aws(self) -> AwsSession:
        with self._guard:
            if self._aws is None:
                self._aws = AwsSession(self.name, self.env)
            return self._aws

    def _bucket(self, what: str) -> str:
        if self.env.terraform is None:
            raise UsageError(
                f"environment {self.name!r} has no terraform backend bucket to hold its {what}",
                f"add [tool.deployctl.environments.{self.name}.terraform] with a backend",
            )
        return self.env.terraform.backend.bucket

    def aws_in(self, region: str) -> AwsSession:
        """The environment's AWS session (its one AssumeRole) with clients in ``region`` (a cluster's, a registry's)."""
        if region == self.env.aws.region:
            return self.aws
        with self._guard:
            if region not in self._regional:
                self._regional[region] = RegionalSession(self.aws, region)
            return self._regional[region]
