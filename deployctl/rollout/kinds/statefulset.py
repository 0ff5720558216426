"""A StatefulSet's verdict: its state from the API object and its update revision's pods (partitions, OnDelete)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deployctl.adapters.kube.view import View
from deployctl.rollout.kinds.common import WAITING_FOR_CONTROLLER, Kind, Obj, int_of, parts_of
from deployctl.rollout.pods import PodState
from deployctl.rollout.signals import VerdictContext, controller_failure, first_failure
from deployctl.rollout.states import Verdict


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
    meta, spec, status = parts_of(obj)
    strategy = spec.get("updateStrategy") or {}
    return StatefulSetState(
        name=str(meta.get("name", "")),
        generation=int_of(meta.get("generation")),
        observed_generation=int_of(status.get("observedGeneration")),
        replicas=int_of(spec.get("replicas"), 1),
        status_replicas=int_of(status.get("replicas")),
        ready_replicas=int_of(status.get("readyReplicas")),
        updated_replicas=int_of(status.get("updatedReplicas")),
        update_revision=str(status.get("updateRevision") or ""),
        current_revision=str(status.get("currentRevision") or ""),
        strategy=str(strategy.get("type") or "RollingUpdate"),
        partition=int_of((strategy.get("rollingUpdate") or {}).get("partition")),
    )


def statefulset_verdict(
    s: StatefulSetState, new_pods: Sequence[PodState], vctx: VerdictContext, *, min_replicas: int | None = None
) -> Verdict:
    """Complete when the pods its update strategy rolls run the update revision and all are ready; with an HPA
    (``min_replicas``), once its minReplicas are: more on top are a scale-up ("scaling")."""
    failure = first_failure(new_pods, vctx.tuning, vctx.now, vctx.events)
    failure = failure or controller_failure(vctx.events, "StatefulSet", s.name, vctx.since)
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


def _judge(
    obj: Obj, pods: Sequence[PodState], new: Sequence[PodState], vctx: VerdictContext, floor: int | None
) -> Verdict:
    del pods
    return statefulset_verdict(statefulset_state(obj), new, vctx, min_replicas=floor)


def _desired(obj: Obj) -> tuple[int, int]:
    state = statefulset_state(obj)
    return state.replicas - state.held_back, state.held_back


def _new_pods(obj: Obj, pods: Sequence[PodState], view: View) -> list[PodState]:
    """The pods of the StatefulSet's ``updateRevision``."""
    del view
    revision = (obj.get("status") or {}).get("updateRevision")
    return [p for p in pods if not p.deleting and p.label("controller-revision-hash") == revision]


KIND = Kind(
    "StatefulSet",
    ("AppsV1Api", "list_namespaced_stateful_set"),
    judge=_judge,
    desired=_desired,
    new_pods=_new_pods,
)
