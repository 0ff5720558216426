"""The workload kinds registry (deployctl/rollout/kinds: ``KINDS``): every registered kind, judged through
``tracking`` with one new pod in each failure class, says failed with that class's reason; and every kind whose
pods a controller makes says failed when its controller cannot make them. A kind registered without its line in
``WORKLOADS`` below fails here: adding a kind is its module plus these lines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from deployctl.rollout.kinds import KINDS, lists
from deployctl.rollout.signals import EventState, VerdictContext
from deployctl.rollout.tracking import ManifestWorkload, judge_object, kinds_to_watch

T0 = 1_800_000_000.0
STAMP = "2027-01-15T08:00:00Z"  # T0
CTX = VerdictContext(now=T0 + 120, since=T0 - 1)
Obj = dict[str, Any]


def pod(status: Obj, *, owner: str | None, labels: dict[str, str] | None = None, restart: str = "Always") -> Obj:
    """A pod of the workload (owned by ``owner``'s uid) in ``status``."""
    meta: Obj = {"name": "w-0", "uid": "u-pod", "creationTimestamp": STAMP, "labels": labels or {}}
    if owner is not None:
        meta["ownerReferences"] = [{"controller": True, "uid": owner, "kind": "X", "name": "w"}]
    spec = {"restartPolicy": restart, "containers": [{"name": "app", "image": "r/app@sha256:" + "a" * 64}]}
    return {"kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def workload(kind: str, spec: Obj | None = None, status: Obj | None = None, **meta: Any) -> Obj:
    metadata = {"name": "w", "uid": "u-w", "generation": 1, "creationTimestamp": STAMP, **meta}
    return {"kind": kind, "metadata": metadata, "spec": spec or {"replicas": 1}, "status": status or {}}


def deployment(pod_status: Obj) -> tuple[Obj, dict[str, dict[str, Obj]]]:
    revision = {"deployment.kubernetes.io/revision": "1"}
    obj = workload("Deployment", status={"observedGeneration": 1, "replicas": 1}, annotations=revision)
    rs = {
        "kind": "ReplicaSet",
        "metadata": {
            "name": "w-abc",
            "uid": "u-rs",
            "annotations": revision,
            "labels": {"pod-template-hash": "abc"},
            "ownerReferences": [{"controller": True, "uid": "u-w", "kind": "Deployment", "name": "w"}],
        },
    }
    the_pod = pod(pod_status, owner="u-rs", labels={"pod-template-hash": "abc"})
    return obj, {"Deployment": {"w": obj}, "ReplicaSet": {"w-abc": rs}, "Pod": {"w-0": the_pod}}


def statefulset(pod_status: Obj) -> tuple[Obj, dict[str, dict[str, Obj]]]:
    obj = workload("StatefulSet", status={"observedGeneration": 1, "updateRevision": "w-1", "replicas": 1})
    the_pod = pod(pod_status, owner="u-w", labels={"controller-revision-hash": "w-1"})
    return obj, {"StatefulSet": {"w": obj}, "Pod": {"w-0": the_pod}}


def daemonset(pod_status: Obj) -> tuple[Obj, dict[str, dict[str, Obj]]]:
    obj = workload("DaemonSet", spec={}, status={"observedGeneration": 1, "desiredNumberScheduled": 1})
    the_pod = pod(pod_status, owner="u-w", labels={"pod-template-generation": "1"})
    return obj, {"DaemonSet": {"w": obj}, "Pod": {"w-0": the_pod}}


def job(pod_status: Obj) -> tuple[Obj, dict[str, dict[str, Obj]]]:
    obj = workload("Job", spec={"completions": 1, "backoffLimit": 6}, status={"active": 1})
    the_pod = pod(pod_status, owner="u-w", restart="OnFailure")
    return obj, {"Job": {"w": obj}, "Pod": {"w-0": the_pod}}


def bare_pod(pod_status: Obj) -> tuple[Obj, dict[str, dict[str, Obj]]]:
    obj = pod(pod_status, owner=None)
    return obj, {"Pod": {"w-0": obj}}


# kind -> a view of one workload of that kind whose one pod (of its new revision) is in the given status
WORKLOADS: dict[str, Callable[[Obj], tuple[Obj, dict[str, dict[str, Obj]]]]] = {
    "Deployment": deployment,
    "StatefulSet": statefulset,
    "DaemonSet": daemonset,
    "Job": job,
    "Pod": bare_pod,
}


def waiting(reason: str, phase: str = "Pending", restarts: int = 0) -> Obj:
    state = {"name": "app", "restartCount": restarts, "ready": False, "state": {"waiting": {"reason": reason}}}
    return {"phase": phase, "containerStatuses": [state]}


UNSCHEDULABLE = {
    "phase": "Pending",
    "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "lastTransitionTime": STAMP},
    ],
}
# failure class -> a pod in it
FAILURES = {
    "CrashLoopBackOff": waiting("CrashLoopBackOff", "Running", restarts=3),
    "ImagePullBackOff": waiting("ImagePullBackOff"),
    "CreateContainerConfigError": waiting("CreateContainerConfigError"),
    "Unschedulable": UNSCHEDULABLE,
}
RUNNING = {"phase": "Running", "containerStatuses": [{"name": "app", "ready": False, "state": {"running": {}}}]}


def test_every_registered_kind_has_a_workload_here() -> None:
    assert set(WORKLOADS) == set(KINDS)


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_fails_on_each_failure_class_of_a_new_pod(kind: str, failure: str) -> None:
    obj, view = WORKLOADS[kind](FAILURES[failure])
    verdict, pods = judge_object(kind, obj, view, CTX)
    assert (verdict.state, verdict.reason) == ("failed", failure), verdict
    assert [p.name for p in pods] == ["w-0"]
    assert verdict.resource == f"{kind}/{obj['metadata']['name']}"


@pytest.mark.parametrize("kind", KINDS)
def test_a_kind_whose_pod_is_running_is_not_failed(kind: str) -> None:
    obj, view = WORKLOADS[kind](RUNNING)
    verdict, _ = judge_object(kind, obj, view, VerdictContext(now=T0 + 1))  # within every grace
    assert verdict.state == "progressing", verdict


@pytest.mark.parametrize(
    ("kind", "events", "reason"),
    [
        ("StatefulSet", "FailedCreate", "FailedCreate"),
        ("DaemonSet", "FailedCreate", "FailedCreate"),
        ("Job", "FailedCreate", "FailedCreate"),
    ],
)
def test_a_controller_that_cannot_make_pods_fails_its_kind(kind: str, events: str, reason: str) -> None:
    obj, view = WORKLOADS[kind](RUNNING)
    quota = EventState(kind, "w", events, 'pods "w-1" is forbidden: exceeded quota', "Warning", time=T0)
    verdict, _ = judge_object(kind, obj, view, VerdictContext(now=T0 + 1, since=T0 - 1, events=(quota,)))
    assert (verdict.state, verdict.reason) == ("failed", reason), verdict


def test_the_watch_lists_every_kind_a_verdict_reads() -> None:
    wanted = kinds_to_watch([ManifestWorkload("Deployment", "w"), ManifestWorkload("Job", "j")])
    assert wanted == {"Deployment", "ReplicaSet", "Job", "Pod"}
    assert set(lists(tuple(wanted))) == wanted, "each has its list call"
    assert set(lists(tuple(KINDS))) == {*KINDS, "ReplicaSet"}
