"""A rollout as planned and as done, pure: ``RolloutPlan`` (what helm is given, validated before the lock) and
``DeployResult`` (one app in one cluster, judged); ``ClustersDiff``, the drift of an environment with several
clusters (one ``drift.DiffResult`` per cluster, each app entry naming its cluster)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployctl.core.refs import ImageRef
from deployctl.release.drift import DiffResult
from deployctl.verification.model import Verification
from deployctl.verification.plan import Plan


@dataclass(frozen=True)
class RolloutPlan:
    """A validated release of one app: what helm will be given. Built before the lock is taken."""

    app: str
    release: str
    chart: str
    chart_version: str | None
    values_files: tuple[Path, ...]  # the app's section of the values file, then the image it pins
    image: ImageRef
    git_sha: str | None
    manifest: str = ""  # what the chart renders with those values (hooks included)
    other_images: tuple[str, ...] = ()  # containers beside the image's that run another one (sidecars)
    verification: Plan | None = None  # the checks run after a healthy rollout (``app.steps.verification``)


@dataclass(frozen=True)
class DeployResult:
    env: str
    app: str
    release: str
    namespace: str
    image: ImageRef
    git_sha: str | None
    revision: int
    helm_version: int
    outcome: str  # succeeded | unchanged (it already ran this: no helm revision) | failed
    message: str
    duration_seconds: float
    recovered: tuple[str, ...] = ()
    command: str = "deploy"
    cluster: str | None = None  # one of the environment's several clusters (None: its one cluster)
    wave: int = 1
    other_images: tuple[str, ...] = ()  # containers beside the image's that run another one (sidecars)
    verification: Verification | None = None  # the checks after the healthy rollout (None: not run)

    def data(self) -> Mapping[str, Any]:
        where = {"cluster": self.cluster, "wave": self.wave} if self.cluster else {}
        return {
            "env": self.env,
            **where,
            "app": self.app,
            "release": self.release,
            "namespace": self.namespace,
            "image": {
                "repository": self.image.name,
                "tag": self.image.tag,
                "digest": self.image.digest,
                "reference": self.image.pinned,
            },
            "git_sha": self.git_sha,
            "revision": self.revision,
            "helm_major_version": self.helm_version,
            "outcome": self.outcome,
            "message": self.message,
            "duration_seconds": round(self.duration_seconds, 2),
            "recovered": list(self.recovered),
            "other_images": list(self.other_images),
            "verification": self.verification.data() if self.verification is not None else None,
        }

    def text(self) -> Sequence[str]:
        where = f" cluster {self.cluster} (wave {self.wave})" if self.cluster else ""
        release = f"release {self.release} revision {self.revision}, namespace {self.namespace}"
        head = (
            f"unchanged: {self.app} in {self.env}{where} already runs it ({release}): no helm revision made"
            if self.outcome == "unchanged"
            else f"deployed {self.app} to {self.env}{where} ({release}) in {self.duration_seconds:.1f}s"
        )
        lines = [
            head,
            f"  image   {self.image.pinned}" + (f"  (tag {self.image.tag})" if self.image.tag else ""),
        ]
        if self.git_sha:
            lines.append(f"  commit  {self.git_sha}")
        lines.append(f"  rollout {self.message.split('; verified: ')[0]}")
        lines += [f"  also    {item}" for item in self.other_images]
        if self.verification is not None and self.verification.checks:
            lines += self.verification.text()
        lines += [f"  recovered {item}" for item in self.recovered]
        return lines


@dataclass(frozen=True)
class ClustersDiff(DiffResult):
    """``DiffResult`` over several clusters: ``clusters`` names the cluster (and wave) of each entry of ``apps``."""

    clusters: tuple[tuple[str, int], ...] = ()

    @classmethod
    def of(cls, env: str, found: Sequence[tuple[str, int, DiffResult]]) -> ClustersDiff:
        apps = tuple(a for _, _, result in found for a in result.apps)
        where = tuple((name, wave) for name, wave, result in found for _ in result.apps)
        return cls(env=env, apps=apps, clusters=where)

    def data(self) -> Mapping[str, Any]:
        data = dict(super().data())
        data["apps"] = [
            {"cluster": name, "wave": wave, **app}
            for (name, wave), app in zip(self.clusters, data["apps"], strict=True)
        ]
        return data

    def text(self) -> Sequence[str]:
        lines: list[str] = []
        for name, wave in dict.fromkeys(self.clusters):
            apps = tuple(a for a, where in zip(self.apps, self.clusters, strict=True) if where == (name, wave))
            lines.append(f"cluster {name} (wave {wave}):")
            lines += [f"  {line}" for line in DiffResult(self.env, apps, self.color).text()]
        return lines
