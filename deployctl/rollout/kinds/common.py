"""What every workload kind shares: ``Kind`` (the one description of a kind the registry holds), the view helpers
that find a workload's pods by owner uid, and the parts of an API object."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from deployctl.adapters.kube.view import View
from deployctl.rollout.pods import PodState
from deployctl.rollout.signals import VerdictContext
from deployctl.rollout.states import Verdict

WAITING_FOR_CONTROLLER = "waiting for the controller to observe the new spec"

Obj = Mapping[str, Any]
# (the workload, all its pods, its new revision's pods, the context, an HPA's minReplicas) -> its verdict
Judge = Callable[[Obj, Sequence[PodState], Sequence[PodState], VerdictContext, int | None], Verdict]


def int_of(value: object, default: int = 0) -> int:
    """An API integer field (an int, or a string of digits), ``default`` when it is neither."""
    return int(value) if isinstance(value, int | str) and str(value).lstrip("-").isdigit() else default


def parts_of(obj: Obj) -> tuple[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]]:
    """An API object's metadata, spec and status (each empty when absent)."""
    return obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}


def metadata_of(obj: Obj) -> Mapping[str, Any]:
    """An object's metadata (empty when it has none)."""
    return obj.get("metadata") or {}


def uid_of(obj: Obj) -> str:
    """An object's uid ("" when it has none)."""
    return str(metadata_of(obj).get("uid") or "")


def owner_uid(obj: Obj) -> str | None:
    """The uid of the object's controlling owner, None when it has none."""
    owner = next((o for o in metadata_of(obj).get("ownerReferences") or () if o.get("controller")), None)
    return str(owner.get("uid") or "") if owner else None


def owned_by(kind: str, owner: Obj, view: View) -> list[Obj]:
    """The objects of ``kind`` in ``view`` whose controller is ``owner``, by uid: helm re-creates a hook Job under
    the same name while the old Job's pods are still terminating, and those are another owner's."""
    uid = uid_of(owner)
    return [o for o in (view.get(kind) or {}).values() if uid and owner_uid(o) == uid]


def itself(obj: Obj, view: View) -> list[Obj]:
    """A workload that owns its pods directly (StatefulSet, DaemonSet, Job)."""
    del view
    return [obj]


def not_terminating(obj: Obj, pods: Sequence[PodState], view: View) -> list[PodState]:
    """Every pod still running for the workload (a Job's, a bare Pod's): terminating pods are never judged."""
    del obj, view
    return [p for p in pods if not p.deleting]


def one_desired(obj: Obj) -> tuple[int, int]:
    """A bare Pod wants itself: one, none held back."""
    del obj
    return 1, 0


@dataclass(frozen=True)
class Kind:
    """One workload kind, all the rollout needs of it: how to list it, which objects own its pods, which pods are its
    new revision's, its verdict, and how many pods it wants (and holds back, by a partition or OnDelete)."""

    name: str  # the API kind
    list_call: tuple[str, str]  # the kubernetes client's API group class and namespaced list call
    judge: Judge
    desired: Callable[[Obj], tuple[int, int]]  # (pods that must run the revision, pods held back)
    owners: Callable[[Obj, View], list[Obj]] = itself  # what its pods' controller references name
    new_pods: Callable[[Obj, Sequence[PodState], View], list[PodState]] = not_terminating
    # The kinds its pods are found through (a Deployment's ReplicaSets), with their list calls.
    via: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    own_pod: bool = False  # a bare Pod is its own pod
    runs_to_completion: bool = False  # a Job: its pods count when done, not when ready
