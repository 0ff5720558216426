"""What a use case acting on an environment receives: one context per environment per command.

An ``EnvContext`` owns everything that reaches that environment, built on first use and
then reused: the AWS session (one AssumeRole per command), the environment lock with the
standard waiting/take-over reports, the ledger, registry endpoints, the values file, the
cluster (helm + API, with a credential that renews itself on EKS) and the head commit.
Use cases never build clients; tests hand them a context whose parts are fakes.
"""

from __future__ import annotations

import getpass
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from deployctl.adapters import git
from deployctl.adapters.aws import AwsSession, RegionalSession
from deployctl.config import App, Environment, LoadedConfig
from deployctl.console import Reporter
from deployctl.core.errors import UsageError
from deployctl.core.refs import ImageRef
from deployctl.ledger.audit import LedgerRead
from deployctl.ledger.lock import EnvironmentLock, Lease, LockInfo, ci_run_id
from deployctl.ledger.store import Entry, Ledger
from deployctl.notify import send as notify
from deployctl.release.values import ValuesFile
from deployctl.rollout import waves
from deployctl.runner import Runner

if TYPE_CHECKING:
    from deployctl.adapters.helm import Helm, Kube
    from deployctl.adapters.registry import Endpoint
    from deployctl.rollout.cluster import Cluster
    from deployctl.terraform import workspace as infra


class EnvContext:
    """One environment of one configuration, for one command."""

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

    @property
    def lock(self) -> EnvironmentLock:
        with self._guard:
            if self._lock is None:
                self._lock = EnvironmentLock(self.name, self._bucket("lock"), self.aws.client("s3"))
            return self._lock

    @contextmanager
    def locked(self, command: str, timeout: float | None = None) -> Iterator[Lease]:
        """Hold the environment lock for the block, renewed in the background (``lock_ttl_seconds``: a dead
        holder's lock is free that long after), reporting a wait and a take-over the same way everywhere."""
        wait = float(self.env.lock_timeout_seconds if timeout is None else timeout)
        name = self.name
        with self.lock.hold(
            command,
            timeout=wait,
            ttl=timedelta(seconds=self.env.lock_ttl_seconds),
            on_wait=lambda held: self.reporter.progress(f"waiting for the lock of {name}, held by {held.describe()}"),
            on_takeover=self._took_over,
        ) as lease:
            self._lease = lease
            try:
                yield lease
            finally:
                self._lease = None

    def fence(self) -> None:
        """Right before a write to the environment (ledger, values file, registry tag, helm, a recovery): this run
        still holds the lock it took, with its id and fencing number, else LeaseLostError (exit 5) and nothing is
        written. Outside ``locked()`` (an override recorded before the lock) there is nothing to check."""
        lease = self._lease
        if lease is not None:
            lease.check()

    def _took_over(self, held: LockInfo) -> None:
        self.reporter.warn(f"took over a stale lock of {self.name}: {held.describe()}")
        self.announce(notify.Event("lock-taken-over", self.name, f"took over a stale lock: {held.describe()}"))

    def announce(self, event: notify.Event) -> list[notify.Delivery]:
        """Send ``event`` to the webhooks that subscribed to it (``environments.NAME.notify``). Their URLs are
        registered as secrets first (redacted everywhere); a delivery that fails is a warning, never the failure
        of the command that announces."""
        if not self.env.notify:
            return []
        found = notify.targets(self.env.notify, os.environ)
        for target in found:
            self.runner.redactor.add(target.url)
        event = replace(
            event,
            actor=event.actor or os.environ.get("GITHUB_ACTOR") or getpass.getuser(),
            ci_run=event.ci_run or ci_run_id(),
        )
        try:
            deliveries = notify.send(found, event)
        except Exception as exc:  # noqa: BLE001 - a notification never fails what it reports
            self.reporter.warn(f"notifications of {self.name} failed: {type(exc).__name__}: {exc}")
            return []
        for delivery in deliveries:
            if not delivery.delivered:
                self.reporter.warn(f"{event.kind}: {delivery.describe()}")
        return deliveries

    @property
    def ledger(self) -> Ledger:
        with self._guard:
            if self._ledger is None:
                self._ledger = Ledger(self.name, self._bucket("history"), self.aws.client("s3"), self._warn_once)
            return self._ledger

    def read_ledger(self, limit: int | None = None) -> LedgerRead:
        """The environment's ledger, newest first, with every problem found (a deleted, rewritten or corrupt entry,
        a writer's clock off S3's): each said once on stderr, never skipped. Every use case reads it this way."""
        found = self.ledger.read(limit)
        for problem in found.problems:
            self._warn_once(f"the ledger of {self.name}: {problem.describe()}")
        for why in found.skipped:
            self._warn_once(f"the ledger of {self.name}: {why}")
        return found

    def _warn_once(self, message: str) -> None:
        with self._guard:
            if message in self._warned:
                return
            self._warned.add(message)
        self.reporter.warn(message)

    def record(self, entry: Entry) -> None:
        self.fence()
        self.ledger.append(entry)

    # ---------------------------------------------------------------- images

    def image(
        self, app: App, *, tag: str | None = None, digest: str | None = None, target: waves.Target | None = None
    ) -> ImageRef:
        """Where this environment keeps ``app``'s images: its own registry when it has one; ``target``: where that
        cluster pulls them (its own registry, e.g. its region's ECR)."""
        registry = (target.image_registry if target else None) or self.env.image_registry or app.image.registry
        return ImageRef(registry, app.image.repository, tag=tag, digest=digest)

    def endpoint(self, image: ImageRef) -> Endpoint:
        """The repository of ``image`` as this environment reaches it (its AWS session for ECR)."""
        from deployctl.adapters import registry

        key = (image.registry, image.repository)
        with self._guard:
            if key not in self._endpoints:
                region = registry.ecr_region(image.registry) or self.env.aws.region
                ecr = self.aws_in(region).client("ecr") if registry.is_ecr_host(image.registry) else None
                self._endpoints[key] = registry.endpoint(self.env, image, redactor=self.runner.redactor, ecr_client=ecr)
            return self._endpoints[key]

    def resolve_image(self, image: ImageRef) -> ImageRef:
        """``image`` with its digest from the registry (a given digest is checked to exist); exit 2 when absent."""
        endpoint = self.endpoint(image)
        if image.digest is not None:
            found = endpoint.registry_api().resolve(image.repository, image.digest)
            what = f"digest {image.digest}"
        else:
            found = endpoint.resolve(str(image.tag))
            what = f"tag {image.tag!r}"
        if found is None:
            raise UsageError(
                f"image {what} not found in {image.name}",
                "push the image first (CI builds one per commit on main), or pass --image-tag/--digest of an "
                "image that exists",
            )
        return ImageRef(image.registry, image.repository, tag=image.tag, digest=found)

    # ---------------------------------------------------------------- files and git

    @property
    def values(self) -> ValuesFile:
        if self.env.values is None:
            raise UsageError(f"environment {self.name!r} has no values file", "set 'values' for the environment")
        return ValuesFile(self.config.resolve(self.env.values), f"environments.{self.name}.values")

    def chart(self, app_name: str, app: App) -> tuple[str, str | None]:
        """Where helm gets ``app``'s chart: a directory of this repository, or an OCI reference and version."""
        if not app.local_chart:
            return app.chart, app.chart_version
        chart = self.config.resolve(Path(app.chart))
        if not (chart / "Chart.yaml").is_file():
            raise UsageError(f"chart {chart} (apps.{app_name}.chart) has no Chart.yaml", "fix apps.NAME.chart")
        return str(chart), app.chart_version

    def terraform(self, *, pull_request: bool = False) -> infra.Prepared:
        """The environment's terraform workspace, with its one AWS session's credentials (a pull request's plan?)."""
        from deployctl.terraform import workspace as infra

        infra.require_terraform(self.config, self.name)
        credentials = self.aws.credentials_env()
        for secret in self.aws.secrets():
            self.runner.redactor.add(secret)
        return infra.prepare(self.config, self.name, self.runner, self.reporter, credentials, pull_request=pull_request)

    def head_commit(self) -> str:
        with self._guard:
            if self._head is None:
                self._head = git.head(self.runner, self.config.root)
            return self._head

    # ---------------------------------------------------------------- cluster

    @contextmanager
    def cluster(self, target: waves.Target | None = None) -> Iterator[Cluster]:
        """helm and the API for this environment's cluster (``target``: one of its several), in its namespace.

        ``cluster.kubeconfig`` is used as is. For ``cluster.eks`` a kubeconfig is written to a
        private temp file: its user is an exec credential (``deployctl eks-token ENV [--cluster NAME]``), so helm
        and the Python client mint a fresh token whenever theirs expires; the file holds no secret.
        """
        from deployctl.adapters import eks, helm
        from deployctl.rollout.cluster import Cluster

        namespace = self.namespace
        name = target.name if target is not None else None
        if name is None and self.env.clusters:
            target = self.targets()[0]  # a command that reads one cluster (``plan``'s helm diff) reads the first
            name = target.name
        cluster = self.env.clusters[name] if name is not None else self.env.cluster
        key = f"environments.{self.name}." + (f"clusters.{name}" if name else "cluster")
        if cluster is None:  # pragma: no cover - require_deployable above
            raise UsageError(f"environment {self.name!r} has no cluster")
        if cluster.kubeconfig is not None:
            path = self.config.resolve(cluster.kubeconfig)
            if not path.is_file():
                raise UsageError(
                    f"kubeconfig {path} ({key}.kubeconfig) does not exist",
                    "fix the path in the configuration, or create the cluster first",
                )
            kube = helm.Kube(path, cluster.context)
            yield Cluster(kube, self._helm(kube), namespace)
            return
        eks_name = str(cluster.eks)
        region = target.region if target is not None and target.region else self.env.aws.region
        endpoint, ca_data = eks.describe(self.aws_in(region), eks_name)
        command, args = eks.token_command(self.name, self.config.path)
        args += ["--cluster", name] if name else []
        document = eks.kubeconfig(name=eks_name, endpoint=endpoint, ca_data=ca_data, command=command, args=args)
        fd, temp = tempfile.mkstemp(prefix="deployctl-kubeconfig-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(document, handle)
            kube = helm.Kube(Path(temp), eks_name)
            yield Cluster(kube, self._helm(kube), namespace)
        finally:
            Path(temp).unlink(missing_ok=True)

    @contextmanager
    def clusters(self) -> Iterator[dict[str | None, Cluster]]:
        """Every cluster of the environment at once, by target name (None: its one cluster)."""
        with ExitStack() as stack:
            yield {t.name: stack.enter_context(self.cluster(t)) for t in self.targets()}

    def _helm(self, kube: Kube) -> Helm:
        from deployctl.adapters import helm

        with self._guard:
            if self._helm_major is None:
                client = helm.Helm.detect(self.runner, kube)
                self._helm_major = client.major
                return client
        return helm.Helm(runner=self.runner, kube=kube, major=self._helm_major)


class Contexts:
    """The environment contexts of one command, each built once (promote uses two)."""

    def __init__(self, config: LoadedConfig, runner: Runner, reporter: Reporter) -> None:
        self.config = config
        self.runner = runner
        self.reporter = reporter
        self._built: dict[str, EnvContext] = {}

    def __getitem__(self, name: str) -> EnvContext:
        if name not in self._built:
            self._built[name] = EnvContext(self.config, name, self.runner, self.reporter)
        return self._built[name]
