"""Rollout verdicts per workload kind, pure: Deployment, StatefulSet, DaemonSet, Job and a bare Pod.

Each takes the workload's state (from its API object), the pods of its new revision (see ``tracking``)
and a ``verdicts.Context``, and says progressing, complete or failed. A failure signal of a new pod
(``verdicts``) or of the controller wins over the counts; complete is what ``kubectl rollout status``
waits for, with kstatus' and kubedog's rules for StatefulSet partitions and OnDelete.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deployctl.rollout.signals import Context, controller_failure, first_failure, pod_failure
from deployctl.rollout.states import REVISION_ANNOTATION, Condition, PodState, Verdict, conditions_of

WAITING_FOR_CONTROLLER = "waiting for the controller to observe the new spec"


def _int(value: object, default: int = 0) -> int:
    return int(value) if isinstance(value, int | str) and str(value).lstrip("-").isdigit() else default


def _base(obj: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]]:
    return obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}


# --------------------------------------------------------------------------- Deployment


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


def deployment_state(obj: Mapping[str, Any]) -> DeploymentState:
    """From a Deployment as a JSON dict (camelCase, as the API serves it)."""
    meta, spec, status = _base(obj)
    return DeploymentState(
        name=str(meta.get("name", "")),
        generation=_int(meta.get("generation")),
        observed_generation=_int(status.get("observedGeneration")),
        replicas=_int(spec.get("replicas"), 1),
        status_replicas=_int(status.get("replicas")),
        updated_replicas=_int(status.get("updatedReplicas")),
        available_replicas=_int(status.get("availableReplicas")),
        ready_replicas=_int(status.get("readyReplicas")),
        revision=str((meta.get("annotations") or {}).get(REVISION_ANNOTATION, "")),
        conditions=conditions_of(status),
    )


def verdict_of(
    deployment: DeploymentState,
    new_pods: Sequence[PodState],
    ctx: Context | None = None,
    *,
    min_replicas: int | None = None,
) -> Verdict:
    """The state of a rollout, from the Deployment and the pods of its new ReplicaSet.

    Failed as soon as a new pod shows a failure signal, or the Deployment reports
    ProgressDeadlineExceeded/ReplicaFailure; complete when every desired replica is updated,
    available, and no old replica remains (what ``kubectl rollout status`` waits for). With an HPA
    (``min_replicas``): complete once its minReplicas are updated and available and no old replica remains;
    more replicas the HPA asks for on top are a scale-up ("scaling"), not an unfinished rollout.
    """
    ctx = ctx or Context()
    failure = first_failure(new_pods, ctx.tuning, ctx.now, ctx.events)
    if failure is not None:
        return failure
    progressing = deployment.condition("Progressing")
    if progressing is not None and progressing.status == "False" and progressing.reason == "ProgressDeadlineExceeded":
        stuck = next((p for p in sorted(new_pods, key=lambda p: p.name) if not p.ready and not p.deleting), None)
        return Verdict(
            "failed",
            f"deployment {deployment.name}: ProgressDeadlineExceeded: {progressing.message}",
            pod=stuck.name if stuck else None,
            reason="ProgressDeadlineExceeded",
        )
    failure_condition = deployment.condition("ReplicaFailure")
    if failure_condition is not None and failure_condition.status == "True":
        reason = failure_condition.reason or "ReplicaFailure"
        return Verdict("failed", f"deployment {deployment.name}: {reason}: {failure_condition.message}", reason=reason)
    if deployment.observed_generation < deployment.generation:
        return Verdict("progressing", WAITING_FOR_CONTROLLER)
    if min_replicas is not None:
        return _autoscaled(deployment, min_replicas)
    want = deployment.replicas
    if deployment.updated_replicas < want:
        return Verdict("progressing", f"{deployment.updated_replicas} of {want} new replicas updated")
    if deployment.status_replicas > deployment.updated_replicas:
        old = deployment.status_replicas - deployment.updated_replicas
        return Verdict("progressing", f"{old} old replica(s) pending termination")
    if deployment.available_replicas < deployment.updated_replicas:
        return Verdict("progressing", f"{deployment.available_replicas} of {want} updated replicas available")
    return Verdict("complete", f"{want} of {want} replicas updated and available")


def _autoscaled(deployment: DeploymentState, floor: int) -> Verdict:
    """A Deployment an HPA scales: the HPA's ``floor`` must be updated and available, old replicas gone."""
    hpa = f"its HPA's minReplicas {floor}"
    if deployment.updated_replicas < floor:
        return Verdict("progressing", f"{deployment.updated_replicas} of {floor} new replicas updated ({hpa})")
    if deployment.status_replicas > deployment.updated_replicas:
        old = deployment.status_replicas - deployment.updated_replicas
        return Verdict("progressing", f"{old} old replica(s) pending termination")
    if deployment.available_replicas < floor:
        return Verdict("progressing", f"{deployment.available_replicas} of {floor} updated replicas available ({hpa})")
    want, available = deployment.replicas, deployment.available_replicas
    if available < want:
        return Verdict("complete", f"{available} replicas updated and available ({hpa}); scaling to {want}")
    return Verdict("complete", f"{want} of {want} replicas updated and available ({hpa})")


# --------------------------------------------------------------------------- StatefulSet


@dataclass(frozen=True)
class StatefulSetState:
    name: str
    generation: int
    observed_generation: int
    replicas: int
    status_replicas: int = 0
    ready_replicas: int = 0
    updated_replicas: int = 0
    update_revision: str = ""  # pods of the new spec carry it as controller-revision-hash
    current_revision: str = ""
    strategy: str = "RollingUpdate"  # or OnDelete
    partition: int = 0  # RollingUpdate: pods with an ordinal below it keep the old revision

    @property
    def held_back(self) -> int:
        """Pods the update strategy leaves on the old revision on purpose."""
        if self.strategy == "OnDelete":
            return max(self.replicas - self.updated_replicas, 0)
        return min(max(self.partition, 0), self.replicas)


def statefulset_state(obj: Mapping[str, Any]) -> StatefulSetState:
    meta, spec, status = _base(obj)
    strategy = spec.get("updateStrategy") or {}
    return StatefulSetState(
        name=str(meta.get("name", "")),
        generation=_int(meta.get("generation")),
        observed_generation=_int(status.get("observedGeneration")),
        replicas=_int(spec.get("replicas"), 1),
        status_replicas=_int(status.get("replicas")),
        ready_replicas=_int(status.get("readyReplicas")),
        updated_replicas=_int(status.get("updatedReplicas")),
        update_revision=str(status.get("updateRevision") or ""),
        current_revision=str(status.get("currentRevision") or ""),
        strategy=str(strategy.get("type") or "RollingUpdate"),
        partition=_int((strategy.get("rollingUpdate") or {}).get("partition")),
    )


def statefulset_verdict(
    s: StatefulSetState, new_pods: Sequence[PodState], ctx: Context, *, min_replicas: int | None = None
) -> Verdict:
    """Complete when the pods its update strategy rolls run the update revision and all are ready; with an HPA
    (``min_replicas``), once its minReplicas are: more on top are a scale-up ("scaling")."""
    failure = first_failure(new_pods, ctx.tuning, ctx.now, ctx.events)
    failure = failure or controller_failure(ctx.events, "StatefulSet", s.name, ctx.since)
    if failure is not None:
        return failure
    if s.observed_generation < s.generation or not s.update_revision:
        return Verdict("progressing", WAITING_FOR_CONTROLLER)
    if s.status_replicas > s.replicas:
        return Verdict("progressing", f"{s.status_replicas - s.replicas} pod(s) pending termination")
    if min_replicas is not None and (s.status_replicas < s.replicas or s.replicas < min_replicas):
        if s.ready_replicas >= min_replicas and s.updated_replicas >= s.status_replicas:
            scaling = f"{s.ready_replicas} pods updated and ready (its HPA's minReplicas {min_replicas})"
            return Verdict("complete", f"{scaling}; scaling to {s.replicas}")
        return Verdict("progressing", f"{s.ready_replicas} of {min_replicas} pods ready (its HPA's minReplicas)")
    want = s.replicas - s.held_back if s.strategy != "OnDelete" else 0
    if s.updated_replicas < want:
        return Verdict("progressing", f"{s.updated_replicas} of {want} pods updated")
    if s.ready_replicas < s.replicas:
        return Verdict("progressing", f"{s.ready_replicas} of {s.replicas} pods ready")
    if s.strategy == "OnDelete":
        return Verdict(
            "complete",
            f"OnDelete: {s.updated_replicas} of {s.replicas} pods run the new revision; "
            f"{s.held_back} keep the old one until they are deleted",
        )
    if s.partition > 0:
        updated = f"{s.updated_replicas} of {s.replicas} pods updated"
        return Verdict("complete", f"partition {s.partition}: {updated}, all ready")
    if s.current_revision != s.update_revision:
        return Verdict("progressing", "waiting for the controller to finish the rolling update")
    return Verdict("complete", f"{s.replicas} of {s.replicas} pods updated and ready")


# --------------------------------------------------------------------------- DaemonSet


@dataclass(frozen=True)
class DaemonSetState:
    name: str
    generation: int
    observed_generation: int
    desired: int = 0  # desiredNumberScheduled: nodes it should run on
    updated: int = 0
    available: int = 0
    ready: int = 0
    strategy: str = "RollingUpdate"

    @property
    def held_back(self) -> int:
        return max(self.desired - self.updated, 0) if self.strategy == "OnDelete" else 0


def daemonset_state(obj: Mapping[str, Any]) -> DaemonSetState:
    meta, spec, status = _base(obj)
    return DaemonSetState(
        name=str(meta.get("name", "")),
        generation=_int(meta.get("generation")),
        observed_generation=_int(status.get("observedGeneration")),
        desired=_int(status.get("desiredNumberScheduled")),
        updated=_int(status.get("updatedNumberScheduled")),
        available=_int(status.get("numberAvailable")),
        ready=_int(status.get("numberReady")),
        strategy=str((spec.get("updateStrategy") or {}).get("type") or "RollingUpdate"),
    )


def daemonset_verdict(d: DaemonSetState, new_pods: Sequence[PodState], ctx: Context) -> Verdict:
    failure = first_failure(new_pods, ctx.tuning, ctx.now, ctx.events)
    failure = failure or controller_failure(ctx.events, "DaemonSet", d.name, ctx.since)
    if failure is not None:
        return failure
    if d.observed_generation < d.generation:
        return Verdict("progressing", WAITING_FOR_CONTROLLER)
    if d.strategy == "OnDelete":
        if d.ready < d.desired:
            return Verdict("progressing", f"{d.ready} of {d.desired} pods ready")
        return Verdict("complete", f"OnDelete: {d.updated} of {d.desired} pods run the new revision")
    if d.updated < d.desired:
        return Verdict("progressing", f"{d.updated} of {d.desired} pods updated")
    if d.available < d.desired:
        return Verdict("progressing", f"{d.available} of {d.desired} updated pods available")
    return Verdict("complete", f"{d.desired} of {d.desired} pods updated and available")


# --------------------------------------------------------------------------- Job


@dataclass(frozen=True)
class JobState:
    name: str
    completions: int = 1
    active: int = 0
    succeeded: int = 0
    failed: int = 0
    suspended: bool = False
    conditions: tuple[Condition, ...] = ()

    def condition(self, *kinds: str) -> Condition | None:
        return next((c for c in self.conditions if c.type in kinds and c.status == "True"), None)


def job_state(obj: Mapping[str, Any]) -> JobState:
    meta, spec, status = _base(obj)
    return JobState(
        name=str(meta.get("name", "")),
        completions=_int(spec.get("completions"), 1),  # unset: one success completes it
        active=_int(status.get("active")),
        succeeded=_int(status.get("succeeded")),
        failed=_int(status.get("failed")),
        suspended=bool(spec.get("suspend")),
        conditions=conditions_of(status),
    )


@dataclass(frozen=True)
class _Failed:
    """The latest failed pod of a Job (or a failed bare Pod): which, which container, why."""

    pod: str | None = None
    container: str | None = None
    reason: str = ""
    detail: str = ""


def _last_failed(pods: Sequence[PodState]) -> _Failed:
    failed = sorted((p for p in pods if p.phase == "Failed"), key=lambda p: (p.created_at or 0, p.name))
    if not failed:
        return _Failed()
    pod = failed[-1]
    exited = [c for c in pod.containers if c.failed_exit]
    c = next((c for c in exited if not c.init), exited[0] if exited else None)
    if c is not None:
        reason = "OOMKilled" if "OOMKilled" in (c.terminated_reason, c.last_terminated_reason) else "Error"
        return _Failed(pod.name, c.name, reason, f"pod {pod.name} container {c.name}: {c.exit_reason}")
    why = pod.reason or "Failed"
    return _Failed(pod.name, None, why, f"pod {pod.name}: {why}" + (f": {pod.message}" if pod.message else ""))


def job_verdict(job: JobState, pods: Sequence[PodState], ctx: Context) -> Verdict:
    """Complete at its Complete condition; failed at its Failed condition (BackoffLimitExceeded,
    DeadlineExceeded...), at a failure signal of a pod still running or pending, or when more pods
    failed than the restart budget allows (the Job controller retries with back-off: 10 s, 20 s, 40 s...)."""
    last = _last_failed(pods)
    ended = job.condition("Failed", "FailureTarget")
    if ended is not None:
        reason = ended.reason or "JobFailed"
        message = f"job {job.name}: {reason}: {ended.message}" + (f"; {last.detail}" if last.detail else "")
        return Verdict("failed", message, pod=last.pod, container=last.container, reason=reason)
    if job.condition("Complete", "SuccessCriteriaMet") is not None:
        return Verdict("complete", f"job {job.name} completed")
    if job.suspended:
        return Verdict("complete", f"job {job.name} is suspended: not waited on")
    live = [p for p in pods if p.phase not in ("Failed", "Succeeded")]
    failure = first_failure(live, ctx.tuning, ctx.now, ctx.events, readiness=False)
    if failure is not None:
        return failure
    failures = max(job.failed, sum(1 for p in pods if p.phase == "Failed"))
    if failures > ctx.tuning.restarts_allowed:
        return Verdict(
            "failed",
            f"job {job.name}: {failures} pods failed ({ctx.tuning.restarts_allowed} retries allowed): {last.detail}",
            pod=last.pod,
            container=last.container,
            reason=last.reason or "Error",
        )
    failure = controller_failure(ctx.events, "Job", job.name, ctx.since)
    if failure is not None:
        return failure
    return Verdict(
        "progressing",
        f"job {job.name}: {job.succeeded} of {job.completions} completed, {job.active} running, {job.failed} failed",
    )


# --------------------------------------------------------------------------- a bare Pod


def pod_verdict(pod: PodState, ctx: Context) -> Verdict:
    """A Pod of its own: complete when Ready (restartPolicy Always) or Succeeded (a pod that runs to
    completion), failed on a failure signal or in phase Failed."""
    failure = pod_failure(pod, ctx.tuning, ctx.now, ctx.events, readiness=pod.restart_policy == "Always")
    if failure is not None:
        return failure
    if pod.phase == "Failed":
        last = _last_failed([pod])
        return Verdict("failed", last.detail, pod=pod.name, container=last.container, reason=pod.reason or last.reason)
    if pod.done:
        return Verdict("complete", f"pod {pod.name} completed")
    if pod.ready and pod.restart_policy == "Always":
        return Verdict("complete", f"pod {pod.name} is ready")
    waiting = next((c.waiting_reason for c in pod.containers if c.waiting_reason), "")
    return Verdict("progressing", f"pod {pod.name}: {pod.phase}" + (f" ({waiting})" if waiting else ""))
