"""A release as it runs now, judged from one snapshot of its namespace: every workload its manifest names, and the
hooks of its revision that failed."""

from __future__ import annotations

import time
from dataclasses import dataclass

from deployctl.adapters.helm import Release
from deployctl.adapters.helm_argv import Kube
from deployctl.adapters.kube.client import autoscaler_present, errors, live_view, translate
from deployctl.rollout.hooks import hook_verdicts
from deployctl.rollout.kinds import KINDS, lists
from deployctl.rollout.signals import Tuning, VerdictContext
from deployctl.rollout.states import Health, Verdict, WorkloadHealth, release_health
from deployctl.rollout.tracking import desired_image, health_of, targets_in


@dataclass(frozen=True)
class LiveWorkload:
    """A workload of a release as it runs now: its health inputs plus the provenance annotations."""

    health: WorkloadHealth
    image: str
    tag: str | None
    git_sha: str | None


@dataclass(frozen=True)
class LiveRelease:
    """A release as it runs now: helm's latest revision (status, manifest, hooks), each workload its manifest names
    judged from one snapshot of the namespace, and the revision's hooks that failed."""

    release: Release
    workloads: tuple[LiveWorkload, ...]
    failed_hooks: tuple[Verdict, ...] = ()

    def health(self, digest: str | None) -> Health:
        """The one definition of healthy (``rollout.release_health``) for this release, ``digest`` when given."""
        return release_health(self.release.status, [w.health for w in self.workloads], digest, self.failed_hooks)


def live_release(kube: Kube, namespace: str, release: Release) -> LiveRelease:
    """``release`` (a revision with its manifest and hooks) as it runs: every workload its manifest names, whatever
    the chart's labels, each judged from one snapshot of the namespace (its object, its ReplicaSets, its pods by
    owner uid); a workload missing from the cluster is a failure, as is a hook of the revision that failed."""
    targets = targets_in(release.manifest)
    try:
        api, view = live_view(kube, namespace, lists(tuple(KINDS)))
        vctx = VerdictContext(tuning=Tuning(autoscaler=autoscaler_present(api)), now=time.time())
    except errors() as exc:
        raise translate(exc, kube, f"read the workloads of release {release.name} in {namespace}") from None
    found = []
    for target in targets:
        obj = (view.get(target.kind) or {}).get(target.name)
        if obj is None:
            missing = Verdict("failed", f"{target.ref} is not in {namespace}", reason="Missing", resource=target.ref)
            health = WorkloadHealth(target.kind, target.name, target.digest, target.min_replicas or 1, missing)
            found.append(LiveWorkload(health, "", None, None))
            continue
        image, _ = desired_image(obj)
        template = (obj.get("spec") or {}).get("template") or {}
        annotations = {
            **((obj.get("metadata") or {}).get("annotations") or {}),
            **((template.get("metadata") or {}).get("annotations") or {}),
        }
        found.append(
            LiveWorkload(
                health_of(target.kind, obj, view, vctx, target),
                image,
                annotations.get("deployctl.dev/image-tag"),
                annotations.get("deployctl.dev/git-sha"),
            )
        )
    return LiveRelease(release, tuple(found), tuple(hook_verdicts(release.hooks, view, vctx)))
