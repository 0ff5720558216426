"""One environment's cluster for one command: helm and the Kubernetes API, in the environment's namespace.

Use cases act on a cluster only through this object, so a test can hand them another one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployctl import watch
from deployctl.helm import Helm, Kube, Release, Revision
from deployctl.kube import (
    LiveWorkload,
    ObjectReader,
    ReleaseRecord,
    delete_release_record,
    live_workloads,
    pending_release_records,
)
from deployctl.rollout import Verdict, deployments_in


@dataclass(frozen=True)
class Cluster:
    kube: Kube
    helm: Helm
    namespace: str

    @property
    def helm_major(self) -> int:
        return self.helm.major

    def release(self, name: str) -> Release | None:
        return self.helm.release(name, self.namespace)

    def history(self, name: str) -> list[Revision]:
        return self.helm.history(name, self.namespace)

    def release_manifest(self, name: str) -> str:
        return self.helm.status(name, self.namespace).manifest

    def release_values(self, name: str) -> dict[str, Any]:
        return self.helm.values(name, self.namespace)

    def template(
        self,
        *,
        release: str,
        chart: str | Path,
        values_files: Sequence[Path],
        set_string: Mapping[str, str],
        version: str | None = None,
    ) -> str:
        return self.helm.template(
            release=release,
            chart=chart,
            namespace=self.namespace,
            values_files=values_files,
            set_string=set_string,
            version=version,
        )

    def upgrade(
        self,
        *,
        release: str,
        chart: str | Path,
        values_files: Sequence[Path],
        set_string: Mapping[str, str],
        description: str,
        version: str | None = None,
    ) -> Release:
        return self.helm.upgrade(
            release=release,
            chart=chart,
            namespace=self.namespace,
            values_files=values_files,
            set_string=set_string,
            description=description,
            version=version,
        )

    def watch_release(self, manifest: str, *, timeout: float, on_progress: Callable[[str], None]) -> Verdict:
        """Watch every workload ``manifest`` (a release's rendered objects) rolls out until all complete or
        the first fails; the verdict names the failing resource."""
        started = time.monotonic()
        verdict = Verdict("complete", "no workloads in the release")
        for name in deployments_in(manifest):
            remaining = max(1.0, timeout - (time.monotonic() - started))
            verdict = watch.watch_rollout(self.kube, self.namespace, name, timeout=remaining, on_progress=on_progress)
            if verdict.state != "complete":
                return verdict
        return verdict

    def workloads(self, release: str) -> list[LiveWorkload]:
        return live_workloads(self.kube, self.namespace, release)

    def pending_records(self, release: str) -> list[ReleaseRecord]:
        return pending_release_records(self.kube, self.namespace, release)

    def delete_record(self, record: ReleaseRecord) -> None:
        delete_release_record(self.kube, self.namespace, record)

    def reader(self) -> ObjectReader:
        return ObjectReader(self.kube)
