"""Rollout verdicts, pure: is a workload's rollout progressing, complete or failed, and is a release healthy.

Snapshots of API objects (plain dicts, camelCase as the API serves them) become small frozen
states; ``verdict_of`` judges one Deployment from its state and the pods of its new ReplicaSet
(table-tested in tests/unit/test_rollout.py); ``release_health`` is THE definition of healthy,
used by ``deploy`` (what it records), ``status`` and the promotion gate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Container states that never fix themselves during a rollout: report them at once.
FATAL_WAITING_REASONS = frozenset(
    {
        "ImagePullBackOff",
        "ErrImagePull",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "InvalidImageName",
        "ErrImageNeverPull",
    }
)
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
DIGEST_ANNOTATION = "deployctl.dev/image-digest"


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class DeploymentState:
    name: str
    generation: int
    observed_generation: int
    replicas: int  # desired (spec)
    status_replicas: int = 0  # all pods of all ReplicaSets
    updated_replicas: int = 0
    available_replicas: int = 0
    ready_replicas: int = 0
    revision: str = ""
    conditions: tuple[Condition, ...] = ()

    def condition(self, kind: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == kind), None)


@dataclass(frozen=True)
class ContainerState:
    name: str
    ready: bool = False
    waiting_reason: str = ""
    waiting_message: str = ""
    restart_count: int = 0
    last_terminated_reason: str = ""
    last_exit_code: int | None = None


@dataclass(frozen=True)
class PodState:
    name: str
    containers: tuple[ContainerState, ...] = ()
    phase: str = "Pending"
    deleting: bool = False
    ready: bool = False  # the pod's Ready condition: it serves traffic
    digest: str | None = None  # the image digest its first container runs (``image@sha256:...``)
    template_hash: str = ""  # pod-template-hash: which ReplicaSet it belongs to


@dataclass(frozen=True)
class Verdict:
    state: str  # progressing | complete | failed
    message: str
    pod: str | None = None
    container: str | None = None
    reason: str | None = None
    resource: str | None = None  # Kind/name of the workload (or hook) the verdict is about

    @property
    def done(self) -> bool:
        return self.state != "progressing"

    def details(self) -> dict[str, object]:
        """What a failure's JSON carries (``error`` object): the resource, pod, container and reason."""
        return {"resource": self.resource, "pod": self.pod, "container": self.container, "reason": self.reason}


def verdict_of(deployment: DeploymentState, new_pods: Sequence[PodState]) -> Verdict:
    """The state of a rollout, from the Deployment and the pods of its new ReplicaSet.

    Failed as soon as a new pod cannot pull or keeps crashing, or the Deployment reports
    ProgressDeadlineExceeded/ReplicaFailure; complete when every desired replica is updated,
    available, and no old replica remains (what ``kubectl rollout status`` waits for).
    """
    for pod in new_pods:
        if pod.deleting:
            continue
        for container in pod.containers:
            if container.waiting_reason in FATAL_WAITING_REASONS:
                detail = container.waiting_message or ""
                if container.last_terminated_reason or container.last_exit_code is not None:
                    last = f"last exit: {container.last_terminated_reason or 'terminated'}"
                    if container.last_exit_code is not None:
                        last += f" (code {container.last_exit_code})"
                    detail = f"{detail}; {last}" if detail else last
                return Verdict(
                    "failed",
                    f"pod {pod.name} container {container.name}: {container.waiting_reason}"
                    + (f": {detail}" if detail else ""),
                    pod=pod.name,
                    container=container.name,
                    reason=container.waiting_reason,
                )
    progressing = deployment.condition("Progressing")
    if progressing is not None and progressing.status == "False" and progressing.reason == "ProgressDeadlineExceeded":
        return Verdict(
            "failed",
            f"deployment {deployment.name}: ProgressDeadlineExceeded: {progressing.message}",
            reason="ProgressDeadlineExceeded",
        )
    failure = deployment.condition("ReplicaFailure")
    if failure is not None and failure.status == "True":
        return Verdict(
            "failed",
            f"deployment {deployment.name}: {failure.reason or 'ReplicaFailure'}: {failure.message}",
            reason=failure.reason or "ReplicaFailure",
        )
    if deployment.observed_generation < deployment.generation:
        return Verdict("progressing", "waiting for the deployment controller to observe the new spec")
    want = deployment.replicas
    if deployment.updated_replicas < want:
        return Verdict("progressing", f"{deployment.updated_replicas} of {want} new replicas updated")
    if deployment.status_replicas > deployment.updated_replicas:
        old = deployment.status_replicas - deployment.updated_replicas
        return Verdict("progressing", f"{old} old replica(s) pending termination")
    if deployment.available_replicas < deployment.updated_replicas:
        return Verdict("progressing", f"{deployment.available_replicas} of {want} updated replicas available")
    return Verdict("complete", f"{want} of {want} replicas updated and available")


# --------------------------------------------------------------------------- snapshots from API objects


def deployment_state(obj: Mapping[str, Any]) -> DeploymentState:
    """From a Deployment as a JSON dict (camelCase, as the API serves it)."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    return DeploymentState(
        name=str(meta.get("name", "")),
        generation=int(meta.get("generation") or 0),
        observed_generation=int(status.get("observedGeneration") or 0),
        replicas=int(spec["replicas"]) if spec.get("replicas") is not None else 1,
        status_replicas=int(status.get("replicas") or 0),
        updated_replicas=int(status.get("updatedReplicas") or 0),
        available_replicas=int(status.get("availableReplicas") or 0),
        ready_replicas=int(status.get("readyReplicas") or 0),
        revision=str((meta.get("annotations") or {}).get(REVISION_ANNOTATION, "")),
        conditions=tuple(
            Condition(
                type=str(c.get("type", "")),
                status=str(c.get("status", "")),
                reason=str(c.get("reason") or ""),
                message=str(c.get("message") or ""),
            )
            for c in status.get("conditions") or ()
        ),
    )


def pod_state(obj: Mapping[str, Any]) -> PodState:
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    containers = []
    for cs in [*(status.get("initContainerStatuses") or ()), *(status.get("containerStatuses") or ())]:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        last = (cs.get("lastState") or {}).get("terminated") or {}
        containers.append(
            ContainerState(
                name=str(cs.get("name", "")),
                ready=bool(cs.get("ready")),
                waiting_reason=str(waiting.get("reason") or ""),
                waiting_message=str(waiting.get("message") or ""),
                restart_count=int(cs.get("restartCount") or 0),
                last_terminated_reason=str(last.get("reason") or ""),
                last_exit_code=int(last["exitCode"]) if last.get("exitCode") is not None else None,
            )
        )
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ())
    spec_containers = (obj.get("spec") or {}).get("containers") or [{}]
    return PodState(
        name=str(meta.get("name", "")),
        containers=tuple(containers),
        phase=str(status.get("phase") or "Pending"),
        deleting=meta.get("deletionTimestamp") is not None,
        ready=ready,
        digest=digest_in(str(spec_containers[0].get("image", ""))),
        template_hash=str((meta.get("labels") or {}).get("pod-template-hash", "")),
    )


def digest_in(image: str) -> str | None:
    """The digest an image reference pins (``repo@sha256:...``), else None."""
    return image.partition("@")[2] or None


# --------------------------------------------------------------------------- health: one definition


@dataclass(frozen=True)
class WorkloadHealth:
    """One workload of a release as it runs now: what it should run, its rollout verdict, what serves."""

    kind: str
    name: str
    desired_digest: str | None  # the digest its spec (pod template) names
    desired: int
    verdict: Verdict
    serving: tuple[tuple[str | None, int], ...] = ()  # (digest, ready pods), most first

    @property
    def ready(self) -> int:
        return sum(count for _, count in self.serving)

    @property
    def ready_desired(self) -> int:
        """Ready pods that run the desired digest (the old ReplicaSet's pods do not count)."""
        return sum(count for digest, count in self.serving if digest == self.desired_digest)


@dataclass(frozen=True)
class Health:
    healthy: bool
    reasons: tuple[str, ...] = ()
    proof: str = ""  # when healthy: what was checked, per workload

    @property
    def summary(self) -> str:
        return "healthy" if self.healthy else "; ".join(self.reasons)


def serving(pods: Sequence[PodState]) -> tuple[tuple[str | None, int], ...]:
    """Ready, not-terminating pods counted by the digest they run, most first."""
    counts: dict[str | None, int] = {}
    for pod in pods:
        if pod.ready and not pod.deleting:
            counts[pod.digest] = counts.get(pod.digest, 0) + 1
    return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0] or "")))


def release_health(helm_status: str | None, workloads: Sequence[WorkloadHealth], digest: str | None) -> Health:
    """THE definition of healthy: the helm release is ``deployed``, every workload's rollout is
    complete with all its pods of the desired digest ready, every workload's spec names ``digest``
    (when given), and no pod of another digest serves."""
    reasons: list[str] = []
    if helm_status is None:
        return Health(False, ("the release is not installed",))
    if helm_status != "deployed":
        reasons.append(f"helm release is {helm_status}")
    if not workloads:
        reasons.append("the release has no workloads to verify")
    for w in workloads:
        if w.verdict.state != "complete":
            reasons.append(f"{w.kind.lower()} {w.name}: rollout {w.verdict.state}: {w.verdict.message}")
        if digest is not None and w.desired_digest != digest:
            reasons.append(f"{w.kind.lower()} {w.name} runs {w.desired_digest or 'no pinned digest'}, not {digest}")
        if w.verdict.state == "complete" and w.ready_desired < w.desired:
            reasons.append(f"{w.kind.lower()} {w.name}: {w.ready_desired} of {w.desired} pods of its digest ready")
        others = [f"{n} of {d or 'unpinned'}" for d, n in w.serving if d != w.desired_digest]
        if others:
            reasons.append(f"{w.kind.lower()} {w.name}: pods of another digest serve ({', '.join(others)})")
    proof = "; ".join(
        f"{w.kind.lower()} {w.name}: {w.ready_desired}/{w.desired} ready pods run {w.desired_digest}" for w in workloads
    )
    return Health(not reasons, tuple(reasons), proof)


def deployments_in(manifest: str) -> list[str]:
    """Names of the Deployments in a rendered manifest (multi-document YAML)."""
    import yaml

    names = []
    for doc in yaml.safe_load_all(manifest):
        if isinstance(doc, dict) and doc.get("kind") == "Deployment":
            names.append(str((doc.get("metadata") or {}).get("name", "")))
    return names
