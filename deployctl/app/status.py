"""``deployctl status ENV``: what runs, per app; ``deployctl lock status|break ENV``: the environment lock.

Status reads the helm release (revision, status) and the live Deployment (the image it
runs, its provenance annotations, ready/desired pods), and checks the running digest
against the digest the values file pins (prod: values-prod.yaml ``image.digest``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import yaml

from deployctl import helm, kube
from deployctl.app.base import Target
from deployctl.app.deploy import values_path
from deployctl.lock import EnvironmentLock, LockInfo


@dataclass(frozen=True)
class AppStatus:
    app: str
    release: str
    namespace: str
    installed: bool
    revision: int | None
    helm_status: str | None
    image: str | None
    digest: str | None
    tag: str | None
    git_sha: str | None
    ready: int
    desired: int
    values_digest: str | None
    matches_values: bool | None  # None: the values file pins no digest (dev)

    @property
    def healthy(self) -> bool:
        return self.installed and self.helm_status == "deployed" and self.ready >= self.desired > 0


@dataclass(frozen=True)
class StatusResult:
    env: str
    apps: tuple[AppStatus, ...]
    command: str = "status"

    def data(self) -> Mapping[str, Any]:
        return {"env": self.env, "apps": [{**asdict(a), "healthy": a.healthy} for a in self.apps]}

    def text(self) -> Sequence[str]:
        lines = []
        for a in self.apps:
            if not a.installed:
                lines.append(f"{a.app}: release {a.release} is not installed in {a.namespace}")
                continue
            lines.append(
                f"{a.app}: release {a.release} revision {a.revision} {a.helm_status} in {a.namespace}, "
                f"{a.ready}/{a.desired} pods ready"
            )
            lines.append(f"  digest  {a.digest or '?'}" + (f"  (tag {a.tag})" if a.tag else ""))
            lines.append(f"  commit  {a.git_sha or '?'}")
            if a.matches_values is not None:
                verdict = "matches" if a.matches_values else f"DIFFERS from {a.values_digest}"
                lines.append(f"  values  {verdict} (values file image.digest)")
        return lines


def status(target: Target, app: str | None = None) -> StatusResult:
    target.require_deployable()
    env = target.env
    assert env.namespace is not None  # noqa: S101 (deployable environments have a namespace)
    namespace = env.namespace
    values_file = values_path(target)
    pinned: dict[str, Any] = {}
    if values_file.is_file():
        pinned = yaml.safe_load(values_file.read_text(encoding="utf-8")) or {}
    image_block = pinned.get("image") if isinstance(pinned.get("image"), dict) else {}
    values_digest = str((image_block or {}).get("digest") or "") or None
    apps = []
    with kube.access(target.config, target.name, target.runner.redactor) as access:
        client = helm.Helm.detect(target.runner, access)
        for app_name, app_config in target.apps(app):
            release = client.release(app_config.release, namespace)
            workloads = kube.workloads(access, namespace, app_config.release) if release is not None else []
            workload = workloads[0] if workloads else None
            digest = workload.digest if workload else None
            apps.append(
                AppStatus(
                    app=app_name,
                    release=app_config.release,
                    namespace=namespace,
                    installed=release is not None,
                    revision=release.revision if release else None,
                    helm_status=release.status if release else None,
                    image=workload.image if workload else None,
                    digest=digest,
                    tag=workload.tag if workload else None,
                    git_sha=workload.git_sha if workload else None,
                    ready=sum(w.ready for w in workloads),
                    desired=sum(w.desired for w in workloads),
                    values_digest=values_digest,
                    matches_values=(digest == values_digest) if values_digest else None,
                )
            )
    return StatusResult(env=target.name, apps=tuple(apps))


# --------------------------------------------------------------------------- the environment lock


@dataclass(frozen=True)
class LockResult:
    env: str
    lock: LockInfo | None
    action: str  # status | break
    command: str = "lock status"

    def data(self) -> Mapping[str, Any]:
        info = asdict(self.lock) if self.lock else None
        if self.lock is not None and info is not None:
            info["expired"] = self.lock.expired
        key = "broken" if self.action == "break" else "lock"
        return {"env": self.env, "locked": self.lock is not None and self.action == "status", key: info}

    def text(self) -> Sequence[str]:
        if self.action == "break":
            if self.lock is None:
                return [f"{self.env}: not locked; nothing to break"]
            return [f"{self.env}: removed the lock {self.lock.id} held by {self.lock.describe()}"]
        if self.lock is None:
            return [f"{self.env}: not locked"]
        stale = " (expired)" if self.lock.expired else ""
        return [
            f"{self.env}: locked{stale} by {self.lock.describe()}",
            f"  id {self.lock.id}, expires {self.lock.expires_at}",
        ]


def lock_status(target: Target) -> LockResult:
    return LockResult(target.name, EnvironmentLock(target.name, target.env).current(), "status")
