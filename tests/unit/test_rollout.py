"""Rollout verdicts as tables: API objects recorded from the lab (tests/unit/data/rollout_objects.json) and
small hand-made states -> progressing/complete/failed, the failure signals of a pod, and the one
definition of healthy with its proof."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from deployctl.rollout.kinds.deployment import DeploymentState, deployment_state, verdict_of
from deployctl.rollout.pods import Condition, ContainerState, PodState, pod_state, probe_grace, timestamp
from deployctl.rollout.signals import EventState, Tuning, VerdictContext, pod_failure, tuning_from
from deployctl.rollout.states import Verdict, WorkloadHealth, release_health

RECORDED = json.loads((Path(__file__).parent / "data" / "rollout_objects.json").read_text())


# The recorded unschedulable pod (no node matches its selector) as the scheduler words other reasons (kube-scheduler
# 1.33's messages): nodes short of cpu, or one node tainted not-ready besides the others' selector mismatch.
SCHEDULER_SAYS = {
    "Pod/unsched-cpu": "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
    "3 Preemption is not helpful for scheduling.",
    "Pod/unsched-taint": "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, "
    "2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: "
    "3 Preemption is not helpful for scheduling.",
}


def recorded(key: str) -> dict[str, Any]:
    """An API object as the lab's API server served it (a copy: tests may edit it)."""
    if key in SCHEDULER_SAYS:
        found = recorded("Pod/unsched")
        found["status"]["conditions"][0]["message"] = SCHEDULER_SAYS[key]
        return found
    found = copy.deepcopy(RECORDED[key])
    assert isinstance(found, dict)
    return found


def at(key: str, seconds: float, field: str = "creationTimestamp") -> float:
    """``seconds`` after a recorded object's timestamp (the clock a time-dependent rule is judged at)."""
    stamp = timestamp(recorded(key)["metadata"][field])
    assert stamp is not None
    return stamp + seconds


# --------------------------------------------------------------------------- one pod's failure signals

SCALE_UP = EventState("Pod", "unsched", "TriggeredScaleUp", "pod triggered scale-up: [{eks-ng 2->3 (max: 10)}]")
NO_SCALE_UP = EventState("Pod", "unsched", "NotTriggerScaleUp", "pod didn't trigger scale-up: 1 node(s) didn't match")

# (case, recorded pod, tuning, seconds after its creation (None: no clock), events, failure reason or None)
POD_SIGNALS: list[tuple[str, str, Tuning, float | None, tuple[EventState, ...], str | None]] = [
    ("ready pod", "Pod/ready", Tuning(), 600, (), None),
    ("pull error at once", "Pod/pull", Tuning(), None, (), "ImagePullBackOff"),
    ("crash loop beyond 1 restart", "Pod/crash", Tuning(), None, (), "CrashLoopBackOff"),
    ("crash loop within a budget of 5", "Pod/crash", Tuning(restarts_allowed=5), None, (), None),
    ("OOMKilled named as such", "Pod/oom", Tuning(), None, (), "OOMKilled"),
    ("exit 1, restartPolicy Never: final", "Pod/exited", Tuning(restarts_allowed=5), None, (), "Error"),
    # readiness grace from its probes: startup probe passed, then period 2 + timeout 1 + 1 period + 1 + 1 = 7 s
    ("not ready within the probe grace", "Pod/notready", Tuning(), 5, (), None),
    ("not ready beyond the probe grace", "Pod/notready", Tuning(), 9, (), "NotReady"),
    ("readiness grace from an annotation", "Pod/notready", Tuning(readiness_grace=60), 30, (), None),
    ("no node matches its selector, no autoscaler: at once", "Pod/unsched", Tuning(), 0, (), "Unschedulable"),
    ("... unless a grace is asked for", "Pod/unsched", Tuning(schedule_grace=5), 4, (), None),
    ("insufficient cpu can pass: within the grace", "Pod/unsched-cpu", Tuning(), 4, (), None),
    ("insufficient cpu beyond the grace", "Pod/unsched-cpu", Tuning(), 6, (), "Unschedulable"),
    ("a selector and a taint: within the grace", "Pod/unsched-taint", Tuning(), 4, (), None),
    ("an autoscaler gets a longer grace", "Pod/unsched", Tuning(autoscaler=True), 30, (), None),
    ("... but not forever", "Pod/unsched", Tuning(autoscaler=True), 50, (), "Unschedulable"),
    ("a scale-up under way holds it off", "Pod/unsched", Tuning(), 600, (SCALE_UP,), None),
    ("the autoscaler cannot help: at once", "Pod/unsched", Tuning(autoscaler=True), 1, (NO_SCALE_UP,), "Unschedulable"),
]


@pytest.mark.parametrize(
    ("case", "key", "tuning", "after", "events", "reason"), POD_SIGNALS, ids=[row[0] for row in POD_SIGNALS]
)
def test_pod_failure_signals(
    case: str, key: str, tuning: Tuning, after: float | None, events: tuple[EventState, ...], reason: str | None
) -> None:
    pod = pod_state(recorded(key))
    now = at(key, after) if after is not None else None
    verdict = pod_failure(pod, tuning, now, events)
    assert (verdict.reason if verdict else None) == reason, (case, verdict)
    if verdict is not None:
        assert verdict.state == "failed"
        assert verdict.pod == pod.name


def test_failures_name_the_pod_container_and_what_the_cluster_said() -> None:
    crash = pod_failure(pod_state(recorded("Pod/crash")), Tuning(), None)
    assert crash is not None and crash.container == "app"
    assert "last exit: Error (code 1)" in crash.message and "restart(s), 1 allowed" in crash.message
    oom = pod_failure(pod_state(recorded("Pod/oom")), Tuning(), None)
    assert oom is not None and "OOMKilled (code 137)" in oom.message
    unschedulable = pod_failure(pod_state(recorded("Pod/unsched")), Tuning(), at("Pod/unsched", 6))
    assert unschedulable is not None
    assert "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector" in unschedulable.message
    not_ready = pod_failure(pod_state(recorded("Pod/notready")), Tuning(), at("Pod/notready", 9))
    assert not_ready is not None and "readiness grace 7s" in not_ready.message


@pytest.mark.parametrize(
    ("case", "container", "budget", "reason"),
    [
        ("first crash: the kubelet restarts it at once", ContainerState("a", exit_code=1), 1, None),
        ("no restart allowed", ContainerState("a", exit_code=1), 0, "Error"),
        (
            "running again after a crash: it may work",
            ContainerState("a", restart_count=1, last_exit_code=1, running_since=1.0),
            1,
            None,
        ),
        ("back-off implies a restart", ContainerState("a", waiting_reason="CrashLoopBackOff"), 1, "CrashLoopBackOff"),
        (
            "second OOM",
            ContainerState("a", restart_count=1, terminated_reason="OOMKilled", exit_code=137),
            1,
            "OOMKilled",
        ),
        ("a clean exit is no crash", ContainerState("a", terminated_reason="Completed", exit_code=0), 0, None),
        (
            "config error at once",
            ContainerState("a", waiting_reason="CreateContainerConfigError"),
            9,
            "CreateContainerConfigError",
        ),
        ("invalid image name at once", ContainerState("a", waiting_reason="InvalidImageName"), 9, "InvalidImageName"),
        ("still creating", ContainerState("a", waiting_reason="ContainerCreating"), 0, None),
    ],
)
def test_restart_budget(case: str, container: ContainerState, budget: int, reason: str | None) -> None:
    verdict = pod_failure(PodState("p", (container,), "Running"), Tuning(restarts_allowed=budget), None)
    assert (verdict.reason if verdict else None) == reason, case


@pytest.mark.parametrize(
    ("readiness", "startup", "grace"),
    [
        (None, None, None),
        ({}, None, None),
        ({"periodSeconds": 10}, None, 10 + 1 + 10 + 5 + 1),  # defaults: timeout 1, failure 3, success 1
        ({"periodSeconds": 5, "timeoutSeconds": 2, "failureThreshold": 3}, None, 5 + 2 + 5 + 2.5 + 2),
        ({"periodSeconds": 5, "initialDelaySeconds": 20}, None, 25 + 1 + 5 + 2.5 + 1),
        # with a startup probe the clock starts when it passed: only a period before the first readiness probe
        (
            {"periodSeconds": 5, "initialDelaySeconds": 20},
            {"periodSeconds": 5, "failureThreshold": 30},
            5 + 1 + 5 + 2.5 + 1,
        ),
    ],
)
def test_probe_grace_is_kubedogs_formula(
    readiness: dict[str, int] | None, startup: dict[str, int] | None, grace: float | None
) -> None:
    assert probe_grace(readiness, startup) == grace


def test_tuning_from_annotations_workload_first_bad_values_ignored() -> None:
    workload = {"deployctl.dev/restarts-allowed": "3", "deployctl.dev/schedule-grace-seconds": "nope"}
    template = {"deployctl.dev/restarts-allowed": "9", "deployctl.dev/readiness-grace-seconds": "45"}
    tuning = tuning_from(workload, template, autoscaler=True)
    assert tuning == Tuning(restarts_allowed=3, readiness_grace=45.0, schedule_grace=None, autoscaler=True)
    assert tuning.scheduling == 45.0  # autoscaler default
    assert tuning_from(None, {}) == Tuning()
    assert tuning_from({"deployctl.dev/restarts-allowed": "-1"}).restarts_allowed == 1


def test_pod_snapshot_reads_owner_probes_imageid_and_the_schedulers_message() -> None:
    pod = pod_state(recorded("Pod/api-86d8486b9f-ds5v4"))
    assert pod.owner == ("ReplicaSet", "api-86d8486b9f")
    assert pod.digest == "sha256:" + "e" * 64 and pod.confirmed  # imageID names the spec's digest
    assert pod.containers[0].waiting_reason == "CrashLoopBackOff"
    unsched = pod_state(recorded("Pod/unsched"))
    assert unsched.unschedulable is not None and unsched.unschedulable.reason == "Unschedulable"
    edited = recorded("Pod/ready")
    edited["status"]["containerStatuses"][0]["imageID"] = "r.example/app@sha256:" + "f" * 64
    drifted = pod_state(edited)
    assert drifted.digest == "sha256:" + "f" * 64 and not drifted.confirmed  # what runs, not what was asked
    del edited["status"]["containerStatuses"][0]["imageID"]
    assert pod_state(edited).digest == "sha256:" + "d" * 64 and not pod_state(edited).confirmed


# --------------------------------------------------------------------------- Deployment


def dep(**kw: Any) -> DeploymentState:
    base: dict[str, Any] = {"name": "api", "generation": 2, "observed_generation": 2, "replicas": 2}
    base.update(status_replicas=2, updated_replicas=2, available_replicas=2, ready_replicas=2)
    base.update(kw)
    return DeploymentState(**base)


def pod(reason: str = "", message: str = "", *, deleting: bool = False, **kw: Any) -> PodState:
    return PodState(
        "api-abc-1", (ContainerState("api", waiting_reason=reason, waiting_message=message, **kw),), "Pending", deleting
    )


PROGRESS_DEADLINE = Condition("Progressing", "False", "ProgressDeadlineExceeded", 'ReplicaSet "api-abc" has timed out')


@pytest.mark.parametrize(
    ("deployment", "pods", "state", "reason"),
    [
        pytest.param(dep(), [], "complete", None, id="all-updated-available"),
        pytest.param(dep(observed_generation=1), [], "progressing", None, id="controller-not-caught-up"),
        pytest.param(dep(updated_replicas=1), [], "progressing", None, id="surge-in-progress"),
        pytest.param(dep(status_replicas=3), [], "progressing", None, id="old-replica-still-there"),
        pytest.param(dep(available_replicas=1), [], "progressing", None, id="new-not-yet-available"),
        pytest.param(dep(replicas=0, status_replicas=0, updated_replicas=0, available_replicas=0), [], "complete", None, id="scaled-to-zero"),
        pytest.param(dep(updated_replicas=1), [pod("ContainerCreating")], "progressing", None, id="creating-is-fine"),
        pytest.param(dep(updated_replicas=1), [pod("ImagePullBackOff")], "failed", "ImagePullBackOff", id="pull-backoff"),
        pytest.param(dep(updated_replicas=1), [pod("CrashLoopBackOff", restart_count=1)], "failed", "CrashLoopBackOff", id="crashloop"),
        pytest.param(dep(updated_replicas=1), [pod("CrashLoopBackOff", deleting=True)], "progressing", None, id="terminating-ignored"),
        pytest.param(dep(updated_replicas=1, conditions=(PROGRESS_DEADLINE,)), [], "failed", "ProgressDeadlineExceeded", id="deadline"),
        pytest.param(dep(conditions=(Condition("ReplicaFailure", "True", "FailedCreate", "quota"),)), [], "failed", "FailedCreate", id="replica-failure"),
        # A fatal pod wins even when counts look complete (e.g. a restart after becoming available).
        pytest.param(dep(), [pod("CrashLoopBackOff")], "failed", "CrashLoopBackOff", id="crash-after-available"),
    ],
)  # fmt: skip
def test_verdict_of(deployment: DeploymentState, pods: list[PodState], state: str, reason: str | None) -> None:
    verdict = verdict_of(deployment, pods)
    assert (verdict.state, verdict.reason) == (state, reason), verdict.message
    assert verdict.done == (state != "progressing")


def test_recorded_deployment_mid_rollout_then_past_its_progress_deadline() -> None:
    new = pod_state(recorded("Pod/api-86d8486b9f-ds5v4"))
    earlier = recorded("Deployment/api")  # as it was before its 3 s progress deadline passed
    earlier["status"]["conditions"] = [c for c in earlier["status"]["conditions"] if c["type"] != "Progressing"]
    state = deployment_state(earlier)
    assert (state.replicas, state.updated_replicas, state.revision) == (2, 1, "2")
    assert verdict_of(state, [], VerdictContext()).state == "progressing"
    assert verdict_of(state, [new], VerdictContext()).reason == "CrashLoopBackOff"
    late = verdict_of(deployment_state(recorded("Deployment/api@deadline")), [], VerdictContext())
    assert (late.state, late.reason) == ("failed", "ProgressDeadlineExceeded")
    assert 'ReplicaSet "api-86d8486b9f" has timed out progressing' in late.message


# --------------------------------------------------------------------------- health and its proof

DIGEST = "sha256:" + "b" * 64
OLD = "sha256:" + "a" * 64
COMPLETE = Verdict("complete", "2 of 2 replicas updated and available")


def workload(**changes: Any) -> WorkloadHealth:
    base: dict[str, Any] = {"kind": "Deployment", "name": "api", "desired_digest": DIGEST, "desired": 2}
    base.update(verdict=COMPLETE, serving=((DIGEST, 2),))
    base.update(changes)
    return WorkloadHealth(**base)


FAILED = Verdict(
    "failed", "pod x: CrashLoopBackOff\n  event Warning BackOff pod/x: Back-off", reason="CrashLoopBackOff"
)
# (case, helm status, workloads, digest expected, healthy, words in the reasons)
HEALTH: list[tuple[str, str | None, list[WorkloadHealth], str | None, bool, str]] = [
    ("healthy", "deployed", [workload()], DIGEST, True, ""),
    ("healthy, no digest asked", "deployed", [workload()], None, True, ""),
    ("not installed", None, [], DIGEST, False, "not installed"),
    ("helm failed, pods ready", "failed", [workload()], DIGEST, False, "helm release is failed"),
    ("pending upgrade", "pending-upgrade", [workload()], DIGEST, False, "pending-upgrade"),
    ("no workloads", "deployed", [], DIGEST, False, "no workloads"),
    ("rollout failed, old pods serve", "deployed", [workload(verdict=FAILED, serving=((OLD, 3),))], DIGEST, False, "rollout failed: pod x: CrashLoopBackOff"),
    ("another digest asked", "deployed", [workload()], OLD, False, f"not {OLD}"),
    ("complete, too few pods serve", "deployed", [workload(serving=((DIGEST, 1),))], DIGEST, False, "1 of 2 pods"),
    ("mixed pods", "deployed", [workload(serving=((DIGEST, 2), (OLD, 1)))], DIGEST, False, "another digest serve"),
    ("partition holds one back", "deployed", [workload(kind="StatefulSet", desired=2, held_back=1, serving=((DIGEST, 2), (OLD, 1)))], DIGEST, True, ""),
    ("more old pods than held back", "deployed", [workload(kind="StatefulSet", held_back=1, serving=((DIGEST, 2), (OLD, 2)))], DIGEST, False, "another digest serve"),
    ("OnDelete: no pod runs it", "deployed", [workload(kind="StatefulSet", desired=0, held_back=2, serving=((OLD, 2),))], DIGEST, False, "no pod runs"),
    ("a Job's completed pods", "deployed", [workload(kind="Job", desired=1, serving=((DIGEST, 1),))], DIGEST, True, ""),
    ("one of two workloads failed", "deployed", [workload(), workload(kind="DaemonSet", name="agent", verdict=FAILED)], DIGEST, False, "daemonset agent"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "helm", "workloads", "digest", "healthy", "words"), HEALTH, ids=[h[0] for h in HEALTH]
)
def test_release_health(
    case: str, helm: str | None, workloads: list[WorkloadHealth], digest: str | None, healthy: bool, words: str
) -> None:
    health = release_health(helm, workloads, digest)
    assert health.healthy is healthy, (case, health.reasons)
    assert words in health.summary
    assert "\n" not in health.summary, "a diagnosis never leaks into the one-line reasons"


def test_proof_says_per_workload_what_runs_the_digest_and_how_it_is_known() -> None:
    health = release_health(
        "deployed",
        [
            workload(confirmed=2),
            workload(kind="StatefulSet", name="db", desired=1, held_back=1, serving=((DIGEST, 1), (OLD, 1))),
            workload(kind="Job", name="migrate", desired=1, serving=((DIGEST, 1),), confirmed=1),
        ],
        DIGEST,
    )
    assert health.healthy, health.reasons
    assert f"deployment api: 2/2 ready pods run {DIGEST} (imageID confirmed on 2)" in health.proof
    assert f"statefulset db: 1/1 ready pods run {DIGEST} (pod spec; the kubelet reports no imageID)" in health.proof
    assert "1 held back by its update strategy" in health.proof
    assert f"job migrate: 1/1 completed pods run {DIGEST}" in health.proof


def test_verdict_diagnosis_goes_after_the_one_line_summary_and_into_the_details() -> None:
    verdict = Verdict("failed", "pod x container y: ErrImagePull", "x", "y", "ErrImagePull", "Deployment/api")
    diagnosed = verdict.diagnosed(["event Warning Failed pod/x: manifest unknown", "logs ...: no logs available"])
    assert diagnosed.summary == "pod x container y: ErrImagePull"
    assert diagnosed.message.splitlines()[1:] == [
        "  event Warning Failed pod/x: manifest unknown",
        "  logs ...: no logs available",
    ]
    assert diagnosed.details() == {
        "resource": "Deployment/api",
        "pod": "x",
        "container": "y",
        "reason": "ErrImagePull",
        "diagnosis": ["event Warning Failed pod/x: manifest unknown", "logs ...: no logs available"],
    }
    assert verdict.diagnosed([]) is verdict


def test_the_events_the_watches_leave_on_the_server_are_none_a_verdict_reads() -> None:
    """The rollout and hook watches ask the API server for every event but the routine ones (issue 29): a reason a
    verdict reads (an autoscaler's on a pod, a controller's FailedCreate) must never be among those."""
    from deployctl.rollout.signals import JUDGED_EVENTS
    from deployctl.rollout.watch import ROUTINE_EVENTS, SELECTED

    assert {"TriggeredScaleUp", "Nominated", "NotTriggerScaleUp", "FailedCreate"} == JUDGED_EVENTS
    assert not JUDGED_EVENTS & set(ROUTINE_EVENTS)
    assert SELECTED["Event"]["field_selector"].split(",") == [f"reason!={r}" for r in ROUTINE_EVENTS]
