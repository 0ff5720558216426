"""The rollout verdict as a table: snapshots of a Deployment and its new pods -> progressing/complete/failed."""

from __future__ import annotations

from typing import Any

import pytest

from deployctl.kube import live_workload
from deployctl.rollout import (
    Condition,
    ContainerState,
    DeploymentState,
    PodState,
    Verdict,
    WorkloadHealth,
    deployment_state,
    pod_state,
    release_health,
    verdict_of,
)


def dep(**kw: Any) -> DeploymentState:
    base: dict[str, Any] = {
        "name": "api",
        "generation": 2,
        "observed_generation": 2,
        "replicas": 2,
        "status_replicas": 2,
        "updated_replicas": 2,
        "available_replicas": 2,
        "ready_replicas": 2,
    }
    base.update(kw)
    return DeploymentState(**base)


def pod(reason: str = "", message: str = "", *, deleting: bool = False, **kw: Any) -> PodState:
    return PodState(
        "api-abc-1", (ContainerState("api", waiting_reason=reason, waiting_message=message, **kw),), "Pending", deleting
    )


PROGRESS_DEADLINE = Condition("Progressing", "False", "ProgressDeadlineExceeded", 'ReplicaSet "api-abc" has timed out')
PROGRESSING_OK = Condition("Progressing", "True", "ReplicaSetUpdated")


@pytest.mark.parametrize(
    ("deployment", "pods", "state", "reason"),
    [
        pytest.param(dep(), [], "complete", None, id="all-updated-available"),
        pytest.param(dep(observed_generation=1), [], "progressing", None, id="controller-not-caught-up"),
        pytest.param(dep(updated_replicas=1), [], "progressing", None, id="surge-in-progress"),
        pytest.param(dep(status_replicas=3), [], "progressing", None, id="old-replica-still-there"),
        pytest.param(dep(available_replicas=1), [], "progressing", None, id="new-not-yet-available"),
        pytest.param(
            dep(replicas=0, status_replicas=0, updated_replicas=0, available_replicas=0),
            [],
            "complete",
            None,
            id="scaled-to-zero",
        ),  # fmt: skip
        pytest.param(dep(updated_replicas=1), [pod("ContainerCreating")], "progressing", None, id="creating-is-fine"),
        pytest.param(
            dep(updated_replicas=1),
            [pod("ImagePullBackOff", "Back-off pulling image")],
            "failed",
            "ImagePullBackOff",
            id="image-pull-backoff",
        ),  # fmt: skip
        pytest.param(
            dep(updated_replicas=1), [pod("ErrImagePull", "not found")], "failed", "ErrImagePull", id="err-image-pull"
        ),  # fmt: skip
        pytest.param(
            dep(updated_replicas=1),
            [pod("CrashLoopBackOff", "back-off 10s", last_exit_code=1)],
            "failed",
            "CrashLoopBackOff",
            id="crashloop",
        ),  # fmt: skip
        pytest.param(
            dep(updated_replicas=1),
            [pod("CreateContainerConfigError", 'configmap "x" not found')],
            "failed",
            "CreateContainerConfigError",
            id="config-error",
        ),  # fmt: skip
        pytest.param(
            dep(updated_replicas=1),
            [pod("CrashLoopBackOff", deleting=True)],
            "progressing",
            None,
            id="terminating-pod-ignored",
        ),  # fmt: skip
        pytest.param(
            dep(updated_replicas=1, conditions=(PROGRESS_DEADLINE,)),
            [],
            "failed",
            "ProgressDeadlineExceeded",
            id="progress-deadline",
        ),  # fmt: skip
        pytest.param(
            dep(updated_replicas=1, conditions=(PROGRESSING_OK,)), [], "progressing", None, id="progressing-true"
        ),  # fmt: skip
        pytest.param(
            dep(conditions=(Condition("ReplicaFailure", "True", "FailedCreate", "forbidden"),)),
            [],
            "failed",
            "FailedCreate",
            id="replica-failure",
        ),  # fmt: skip
        # A fatal pod wins even when counts look complete (e.g. a restart after becoming available).
        pytest.param(dep(), [pod("CrashLoopBackOff")], "failed", "CrashLoopBackOff", id="crash-after-available"),
    ],
)
def test_verdict_of(deployment: DeploymentState, pods: list[PodState], state: str, reason: str | None) -> None:
    verdict = verdict_of(deployment, pods)
    assert verdict.state == state, verdict.message
    assert verdict.reason == reason
    assert verdict.done == (state != "progressing")


def test_failure_names_pod_container_reason_and_message() -> None:
    verdict = verdict_of(
        dep(updated_replicas=1),
        [
            pod(
                "CrashLoopBackOff",
                "back-off 10s restarting failed container",
                last_terminated_reason="Error",
                last_exit_code=2,
            )
        ],
    )
    assert verdict.pod == "api-abc-1"
    assert verdict.container == "api"
    assert "CrashLoopBackOff" in verdict.message
    assert "back-off 10s restarting failed container" in verdict.message
    assert "Error (code 2)" in verdict.message


def test_snapshots_from_api_json() -> None:
    d = deployment_state(
        {
            "metadata": {"name": "api", "generation": 3, "annotations": {"deployment.kubernetes.io/revision": "3"}},
            "spec": {"replicas": 2},
            "status": {
                "observedGeneration": 3,
                "replicas": 3,
                "updatedReplicas": 1,
                "availableReplicas": 2,
                "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}],
            },
        }
    )
    assert (d.generation, d.observed_generation, d.replicas, d.status_replicas, d.revision) == (3, 3, 2, 3, "3")
    assert verdict_of(d, []).state == "progressing"
    p = pod_state(
        {
            "metadata": {"name": "api-x"},
            "status": {
                "phase": "Running",
                "containerStatuses": [
                    {
                        "name": "api",
                        "ready": False,
                        "restartCount": 3,
                        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                        "lastState": {"terminated": {"reason": "Error", "exitCode": 1}},
                    }
                ],
            },
        }
    )
    assert p.containers[0] == ContainerState("api", False, "CrashLoopBackOff", "back-off", 3, "Error", 1)
    # status missing entirely (fresh object): defaults, no crash
    assert deployment_state({"metadata": {"name": "x"}, "spec": {}}).replicas == 1


DIGEST = "sha256:" + "b" * 64
OLD = "sha256:" + "a" * 64


def live_pod(name: str, digest: str, template_hash: str, *, ready: bool = True) -> PodState:
    return PodState(name, (), "Running", ready=ready, digest=digest, template_hash=template_hash)


def test_live_workload_judges_the_new_replicaset_and_counts_serving_pods_by_digest() -> None:
    deployment = {
        "metadata": {
            "name": "api",
            "generation": 3,
            "annotations": {"deployctl.dev/git-sha": "abc1234", "deployment.kubernetes.io/revision": "2"},
        },
        "spec": {
            "replicas": 2,
            "template": {
                "metadata": {"annotations": {"deployctl.dev/image-tag": "abc1234"}},
                "spec": {"containers": [{"image": f"127.0.0.1:5000/api@{DIGEST}"}]},
            },
        },
        "status": {"observedGeneration": 3, "replicas": 4, "updatedReplicas": 2, "readyReplicas": 2},
    }
    sets = [
        {
            "metadata": {
                "labels": {"pod-template-hash": "new"},
                "annotations": {"deployment.kubernetes.io/revision": "2"},
            }
        },
        {
            "metadata": {
                "labels": {"pod-template-hash": "old"},
                "annotations": {"deployment.kubernetes.io/revision": "1"},
            }
        },
    ]
    crash = PodState(
        "api-new-1",
        (ContainerState("api", waiting_reason="CrashLoopBackOff"),),
        "Running",
        digest=DIGEST,
        template_hash="new",
    )
    pods = [crash, live_pod("api-old-1", OLD, "old"), live_pod("api-old-2", OLD, "old")]
    w = live_workload(deployment, sets, pods)
    assert (w.tag, w.git_sha, w.image) == ("abc1234", "abc1234", f"127.0.0.1:5000/api@{DIGEST}")
    assert w.health.desired_digest == DIGEST
    assert w.health.verdict.state == "failed" and w.health.verdict.reason == "CrashLoopBackOff"
    # The old ReplicaSet's two ready pods serve; none of the desired digest does.
    assert w.health.serving == ((OLD, 2),)
    assert (w.health.ready, w.health.ready_desired, w.health.desired) == (2, 0, 2)


COMPLETE = Verdict("complete", "2 of 2 replicas updated and available")


def workload(**changes: Any) -> WorkloadHealth:
    base: dict[str, Any] = {
        "kind": "Deployment",
        "name": "api",
        "desired_digest": DIGEST,
        "desired": 2,
        "verdict": COMPLETE,
        "serving": ((DIGEST, 2),),
    }
    base.update(changes)
    return WorkloadHealth(**base)


# (case, helm status, workloads, digest expected, healthy, words in the reasons)
HEALTH: list[tuple[str, str | None, list[WorkloadHealth], str | None, bool, str]] = [
    ("healthy", "deployed", [workload()], DIGEST, True, ""),
    ("healthy, no digest asked", "deployed", [workload()], None, True, ""),
    ("not installed", None, [], DIGEST, False, "not installed"),
    ("helm failed, pods ready", "failed", [workload()], DIGEST, False, "helm release is failed"),
    ("pending upgrade", "pending-upgrade", [workload()], DIGEST, False, "pending-upgrade"),
    ("no workloads", "deployed", [], DIGEST, False, "no workloads"),
    (
        "rollout failed, old pods serve",
        "deployed",
        [workload(verdict=Verdict("failed", "CrashLoopBackOff"), serving=((OLD, 3),))],
        DIGEST,
        False,
        "rollout failed",
    ),
    ("another digest asked", "deployed", [workload()], OLD, False, f"not {OLD}"),
    ("complete, too few pods serve", "deployed", [workload(serving=((DIGEST, 1),))], DIGEST, False, "1 of 2 pods"),
    ("mixed pods", "deployed", [workload(serving=((DIGEST, 2), (OLD, 1)))], DIGEST, False, "another digest serve"),
]


@pytest.mark.parametrize(
    ("case", "helm", "workloads", "digest", "healthy", "words"), HEALTH, ids=[h[0] for h in HEALTH]
)
def test_release_health(
    case: str, helm: str | None, workloads: list[WorkloadHealth], digest: str | None, healthy: bool, words: str
) -> None:
    health = release_health(helm, workloads, digest)
    assert health.healthy is healthy, case
    assert words in health.summary
