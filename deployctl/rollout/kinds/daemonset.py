"""A DaemonSet's verdict: its state from the API object and its new generation's pods."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deployctl.adapters.kube.view import View
from deployctl.rollout.kinds.common import WAITING_FOR_CONTROLLER, Kind, Obj, int_of, metadata_of, parts_of
from deployctl.rollout.pods import PodState
from deployctl.rollout.signals import VerdictContext, controller_failure, first_failure
from deployctl.rollout.states import Verdict


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
    meta, spec, status = parts_of(obj)
    return DaemonSetState(
        name=str(meta.get("name", "")),
        generation=int_of(meta.get("generation")),
        observed_generation=int_of(status.get("observedGeneration")),
        desired=int_of(status.get("desiredNumberScheduled")),
        updated=int_of(status.get("updatedNumberScheduled")),
        available=int_of(status.get("numberAvailable")),
        ready=int_of(status.get("numberReady")),
        strategy=str((spec.get("updateStrategy") or {}).get("type") or "RollingUpdate"),
    )


def daemonset_verdict(d: DaemonSetState, new_pods: Sequence[PodState], vctx: VerdictContext) -> Verdict:
    failure = first_failure(new_pods, vctx.tuning, vctx.now, vctx.events)
    failure = failure or controller_failure(vctx.events, "DaemonSet", d.name, vctx.since)
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


def _judge(
    obj: Obj, pods: Sequence[PodState], new: Sequence[PodState], vctx: VerdictContext, floor: int | None
) -> Verdict:
    del pods, floor
    return daemonset_verdict(daemonset_state(obj), new, vctx)


def _desired(obj: Obj) -> tuple[int, int]:
    daemons = daemonset_state(obj)
    return daemons.desired - daemons.held_back, daemons.held_back


def _new_pods(obj: Obj, pods: Sequence[PodState], view: View) -> list[PodState]:
    """The pods of the DaemonSet's generation."""
    del view
    generation = str(metadata_of(obj).get("generation"))
    return [p for p in pods if not p.deleting and p.label("pod-template-generation") == generation]


KIND = Kind(
    "DaemonSet",
    ("AppsV1Api", "list_namespaced_daemon_set"),
    judge=_judge,
    desired=_desired,
    new_pods=_new_pods,
)
