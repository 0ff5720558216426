"""A Job's verdict: its state from the API object and its pods (backoff limit, the last failed pod)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deployctl.rollout.kinds.common import Kind, Obj, int_of, parts_of
from deployctl.rollout.pods import Condition, PodState, conditions_of
from deployctl.rollout.signals import VerdictContext, controller_failure, first_failure
from deployctl.rollout.states import Verdict


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
    meta, spec, status = parts_of(obj)
    return JobState(
        name=str(meta.get("name", "")),
        completions=int_of(spec.get("completions"), 1),  # unset: one success completes it
        active=int_of(status.get("active")),
        succeeded=int_of(status.get("succeeded")),
        failed=int_of(status.get("failed")),
        suspended=bool(spec.get("suspend")),
        conditions=conditions_of(status),
    )


@dataclass(frozen=True)
class FailedPod:
    """The latest failed pod of a Job (or a failed bare Pod): which, which container, why."""

    pod: str | None = None
    container: str | None = None
    reason: str = ""
    detail: str = ""


def last_failed(pods: Sequence[PodState]) -> FailedPod:
    """The newest failed pod of ``pods`` and why it failed (empty when none failed)."""
    failed = sorted((p for p in pods if p.phase == "Failed"), key=lambda p: (p.created_at or 0, p.name))
    if not failed:
        return FailedPod()
    pod = failed[-1]
    exited = [c for c in pod.containers if c.failed_exit]
    c = next((c for c in exited if not c.init), exited[0] if exited else None)
    if c is not None:
        reason = "OOMKilled" if "OOMKilled" in (c.terminated_reason, c.last_terminated_reason) else "Error"
        return FailedPod(pod.name, c.name, reason, f"pod {pod.name} container {c.name}: {c.exit_reason}")
    why = pod.reason or "Failed"
    return FailedPod(pod.name, None, why, f"pod {pod.name}: {why}" + (f": {pod.message}" if pod.message else ""))


def job_verdict(job: JobState, pods: Sequence[PodState], vctx: VerdictContext) -> Verdict:
    """Complete at its Complete condition; failed at its Failed condition (BackoffLimitExceeded,
    DeadlineExceeded...), at a failure signal of a pod still running or pending, or when more pods
    failed than the restart budget allows (the Job controller retries with back-off: 10 s, 20 s, 40 s...)."""
    last = last_failed(pods)
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
    failure = first_failure(live, vctx.tuning, vctx.now, vctx.events, readiness=False)
    if failure is not None:
        return failure
    failures = max(job.failed, sum(1 for p in pods if p.phase == "Failed"))
    if failures > vctx.tuning.restarts_allowed:
        return Verdict(
            "failed",
            f"job {job.name}: {failures} pods failed ({vctx.tuning.restarts_allowed} retries allowed): {last.detail}",
            pod=last.pod,
            container=last.container,
            reason=last.reason or "Error",
        )
    failure = controller_failure(vctx.events, "Job", job.name, vctx.since)
    if failure is not None:
        return failure
    return Verdict(
        "progressing",
        f"job {job.name}: {job.succeeded} of {job.completions} completed, {job.active} running, {job.failed} failed",
    )


def _judge(
    obj: Obj, pods: Sequence[PodState], new: Sequence[PodState], vctx: VerdictContext, floor: int | None
) -> Verdict:
    del pods, floor
    return job_verdict(job_state(obj), new, vctx)


KIND = Kind(
    "Job",
    ("BatchV1Api", "list_namespaced_job"),
    judge=_judge,
    desired=lambda obj: (job_state(obj).completions, 0),
    runs_to_completion=True,
)
