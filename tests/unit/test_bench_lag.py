"""``bench.lag.decisive``: the moment a failure class's decisive condition first showed, by the API's timestamp
and by the observer's clock (the benchmark's verdict lag is measured from it)."""

from __future__ import annotations

from typing import Any

from bench.lag import decisive
from deployctl.rollout.pods import timestamp


def pod(statuses: list[dict[str, Any]], conditions: tuple[dict[str, Any], ...] = (), **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "api-1", **meta},
        "spec": {"containers": [{"name": "api"}]},
        "status": {"containerStatuses": statuses, "conditions": list(conditions)},
    }


T0 = "2026-12-07T10:00:00Z"
T5 = "2026-12-07T10:00:05Z"


def test_crash_loop_is_timed_from_the_last_termination_and_first_sighting() -> None:
    running = pod([{"name": "api", "state": {"running": {"startedAt": T0}}}])
    crashing = pod(
        [
            {
                "name": "api",
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"finishedAt": T5, "exitCode": 1}},
            }
        ]
    )
    found = decisive("crash", [(100.0, "Pod", running), (106.0, "Pod", crashing), (107.0, "Pod", crashing)], [])
    assert found.api == timestamp(T5)
    assert found.seen == 106.0
    assert "CrashLoopBackOff" in found.what


def test_never_ready_adds_the_readiness_grace_to_both_times() -> None:
    annotated = pod(
        [{"name": "api", "ready": False, "state": {"running": {"startedAt": T0}}}],
        annotations={"deployctl.dev/readiness-grace-seconds": "4"},
    )
    found = decisive("never-ready", [(50.0, "Pod", annotated)], [])
    assert found.api == timestamp(T0) + 4  # type: ignore[operator]
    assert found.seen == 54.0


def test_unschedulable_and_job_failed_use_the_condition_transition_time() -> None:
    rejected = pod(
        [],
        ({"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "lastTransitionTime": T5},),
    )
    job = {
        "metadata": {"name": "batch"},
        "status": {"conditions": [{"type": "Failed", "status": "True", "lastTransitionTime": T0}]},
    }
    assert decisive("unschedulable", [(9.0, "Pod", rejected)], []).api == timestamp(T5)
    assert decisive("job-failed", [(9.0, "Job", job), (9.5, "Pod", rejected)], []).api == timestamp(T0)


def test_a_pull_error_prefers_the_pull_event_and_a_deleted_pod_does_not_count() -> None:
    pulling = pod([{"name": "api", "state": {"waiting": {"reason": "ErrImagePull"}}}])
    event = {
        "involvedObject": {"name": "api-1"},
        "reason": "Failed",
        "message": "Failed to pull image",
        "firstTimestamp": T0,
    }
    deleted = pod([{"name": "api", "state": {"waiting": {"reason": "ErrImagePull"}}}], deletionTimestamp=T0)
    assert decisive("pull", [(3.0, "Pod", pulling)], [event]).api == timestamp(T0)
    assert decisive("pull", [(3.0, "Pod", deleted)], [event]).what == "not seen"
