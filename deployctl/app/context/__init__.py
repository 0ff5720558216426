"""What a use case acting on an environment receives: one context per environment per command.

An ``EnvContext`` owns everything that reaches that environment, built on first use and
then reused: the AWS session (one AssumeRole per command), the environment lock with the
standard waiting/take-over reports, the ledger, registry endpoints, the values file, the
cluster (helm + API, with a credential that renews itself on EKS) and the head commit.
Use cases never build clients; tests hand them a context whose parts are fakes.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from deployctl.adapters import git
from deployctl.app.context.base import ContextBase
from deployctl.config import App, LoadedConfig
from deployctl.console import Reporter
from deployctl.core.errors import UsageError
from deployctl.core.refs import ImageRef
from deployctl.ledger.audit import LedgerRead
from deployctl.ledger.entry import Entry
from deployctl.ledger.labels import Question
from deployctl.ledger.lock import EnvironmentLock, Lease, LockInfo
from deployctl.ledger.lock_record import ci_run_id
from deployctl.ledger.store import Ledger
from deployctl.notify import events
from deployctl.notify import send as notify
from deployctl.release.values import ValuesFile
from deployctl.rollout import waves
from deployctl.runner import Runner

if TYPE_CHECKING:
    from deployctl.adapters.helm import Helm
    from deployctl.adapters.helm_argv import Kube
    from deployctl.adapters.registry import Endpoint
    from deployctl.rollout.cluster import ClusterClient
    from deployctl.terraform import workspace as infra


class EnvContext(ContextBase):
    """One environment of one configuration, for one command."""

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
        self.announce(events.lock_taken_over(self.name, held.describe()))

    def announce(self, event: events.Event) -> list[notify.Delivery]:
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

    def read_ledger(
        self,
        limit: int | None = None,
        question: Question | None = None,
        answered: Callable[[list[Entry]], bool] | None = None,
    ) -> LedgerRead:
        """The environment's ledger, newest first, with every problem found (a deleted, rewritten or corrupt entry,
        a writer's clock off S3's): each said once on stderr, never skipped. Every use case reads it this way;
        ``question`` (``ledger.labels``): only the entries that answer it are fetched (``answered``: newest first,
        until they answer)."""
        found = self.ledger.read(limit, question, answered)
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
    def cluster(self, target: waves.Target | None = None) -> Iterator[ClusterClient]:
        """helm and the API for this environment's cluster (``target``: one of its several), in its namespace
        (``kube_access``: the kubeconfig as configured, or an exec credential's on EKS)."""
        from deployctl.adapters.kube_access import kube_for
        from deployctl.rollout.cluster import ClusterClient

        namespace = self.namespace
        name = target.name if target is not None else None
        if name is None and self.env.clusters:
            target = self.targets()[0]  # a command that reads one cluster (``plan``'s helm diff) reads the first
            name = target.name
        cluster = self.env.clusters[name] if name is not None else self.env.cluster
        if cluster is None:  # pragma: no cover - require_deployable above
            raise UsageError(f"environment {self.name!r} has no cluster")
        region = target.region if target is not None and target.region else self.env.aws.region
        with kube_for(self.config, self.name, cluster, name=name, region=region, aws_in=self.aws_in) as kube:
            yield ClusterClient(kube, self._helm(kube), namespace)

    @contextmanager
    def clusters(self) -> Iterator[dict[str | None, ClusterClient]]:
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
