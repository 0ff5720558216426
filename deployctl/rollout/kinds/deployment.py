"""A Deployment's verdict: its state from the API object and its new ReplicaSet's pods (autoscaled floors, progress
deadline)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deployctl.adapters.kube.view import View
from deployctl.rollout.kinds.common import (
    WAITING_FOR_CONTROLLER,
    Kind,
    Obj,
    int_of,
    metadata_of,
    owned_by,
    parts_of,
    uid_of,
)
from deployctl.rollout.pods import Condition, PodState, conditions_of
from deployctl.rollout.signals import VerdictContext, first_failure
from deployctl.rollout.states import REVISION_ANNOTATION, Verdict


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
    meta, spec, status = parts_of(obj)
    return DeploymentState(
        name=str(meta.get("name", "")),
        generation=int_of(meta.get("generation")),
        observed_generation=int_of(status.get("observedGeneration")),
        replicas=int_of(spec.get("replicas"), 1),
        status_replicas=int_of(status.get("replicas")),
        updated_replicas=int_of(status.get("updatedReplicas")),
        available_replicas=int_of(status.get("availableReplicas")),
        ready_replicas=int_of(status.get("readyReplicas")),
        revision=str((meta.get("annotations") or {}).get(REVISION_ANNOTATION, "")),
        conditions=conditions_of(status),
    )


def verdict_of(
    deployment: DeploymentState,
    new_pods: Sequence[PodState],
    vctx: VerdictContext | None = None,
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
    vctx = vctx or VerdictContext()
    failure = first_failure(new_pods, vctx.tuning, vctx.now, vctx.events)
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


def _judge(
    obj: Obj, pods: Sequence[PodState], new: Sequence[PodState], vctx: VerdictContext, floor: int | None
) -> Verdict:
    del pods
    return verdict_of(deployment_state(obj), new, vctx, min_replicas=floor)


def _replica_sets(obj: Obj, view: View) -> list[Obj]:
    return owned_by("ReplicaSet", obj, view)


def _new_pods(obj: Obj, pods: Sequence[PodState], view: View) -> list[PodState]:
    """The pods of the ReplicaSet of the Deployment's revision (by its uid and ``pod-template-hash``)."""
    revision = (metadata_of(obj).get("annotations") or {}).get(REVISION_ANNOTATION)
    current = {
        (uid_of(rs), str((metadata_of(rs).get("labels") or {}).get("pod-template-hash", "")))
        for rs in _replica_sets(obj, view)
        if revision and (metadata_of(rs).get("annotations") or {}).get(REVISION_ANNOTATION) == revision
    }
    return [p for p in pods if not p.deleting and (p.owner_uid, p.template_hash) in current]


KIND = Kind(
    "Deployment",
    ("AppsV1Api", "list_namespaced_deployment"),
    judge=_judge,
    desired=lambda obj: (deployment_state(obj).replicas, 0),
    owners=_replica_sets,
    new_pods=_new_pods,
    via={"ReplicaSet": ("AppsV1Api", "list_namespaced_replica_set")},
)
