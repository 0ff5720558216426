"""A bare Pod's verdict: its own state."""

from __future__ import annotations

from collections.abc import Sequence

from deployctl.rollout.kinds.common import Kind, Obj, one_desired
from deployctl.rollout.kinds.job import last_failed
from deployctl.rollout.pods import PodState
from deployctl.rollout.signals import VerdictContext, pod_failure
from deployctl.rollout.states import Verdict


def pod_verdict(pod: PodState, vctx: VerdictContext) -> Verdict:
    """A Pod of its own: complete when Ready (restartPolicy Always) or Succeeded (a pod that runs to
    completion), failed on a failure signal or in phase Failed."""
    failure = pod_failure(pod, vctx.tuning, vctx.now, vctx.events, readiness=pod.restart_policy == "Always")
    if failure is not None:
        return failure
    if pod.phase == "Failed":
        last = last_failed([pod])
        return Verdict("failed", last.detail, pod=pod.name, container=last.container, reason=pod.reason or last.reason)
    if pod.done:
        return Verdict("complete", f"pod {pod.name} completed")
    if pod.ready and pod.restart_policy == "Always":
        return Verdict("complete", f"pod {pod.name} is ready")
    waiting = next((c.waiting_reason for c in pod.containers if c.waiting_reason), "")
    return Verdict("progressing", f"pod {pod.name}: {pod.phase}" + (f" ({waiting})" if waiting else ""))


def _judge(
    obj: Obj, pods: Sequence[PodState], new: Sequence[PodState], vctx: VerdictContext, floor: int | None
) -> Verdict:
    del obj, new, floor
    return pod_verdict(pods[0], vctx)


KIND = Kind("Pod", ("CoreV1Api", "list_namespaced_pod"), judge=_judge, desired=one_desired, own_pod=True)
