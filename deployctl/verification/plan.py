"""What an app checks after a healthy rollout in one environment, pure: its checks in order and where its metrics are
queried."""

from __future__ import annotations

from dataclasses import dataclass

from deployctl.config import Checks, HelmTest, HttpCheck, MetricCheck
from deployctl.verification import helm_test, http, metrics
from deployctl.verification.metrics import MetricsApi


@dataclass(frozen=True)
class Plan:
    """The checks an app runs in an environment (``config.Verify.resolved``) and where its metrics are queried."""

    helm_test: HelmTest | None = None
    http: tuple[HttpCheck, ...] = ()
    metrics: tuple[MetricCheck, ...] = ()
    metrics_api: MetricsApi | None = None

    @classmethod
    def of(cls, checks: Checks, metrics_api: MetricsApi | None) -> Plan:
        test = checks.helm_test if checks.helm_test is not None and checks.helm_test.enabled else None
        return cls(test, tuple(checks.http or ()), tuple(checks.metrics or ()), metrics_api)

    @property
    def names(self) -> list[tuple[str, str]]:
        """(name, kind) of every check, in the order they run."""
        found = [(helm_test.NAME, helm_test.KIND)] if self.helm_test is not None else []
        found += [(c.label, http.KIND) for c in self.http]
        return found + [(c.name, metrics.KIND) for c in self.metrics]

    @property
    def configured(self) -> bool:
        return bool(self.names)
