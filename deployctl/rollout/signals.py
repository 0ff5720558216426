"""Failure signals of one pod, pure: what ends a rollout at once, and what ends it after a budget.

* at once: ErrImagePull, ImagePullBackOff, InvalidImageName, ErrImageNeverPull, CreateContainerConfigError,
  CreateContainerError (nothing changes them but a new spec);
* after the restart budget (``deployctl.dev/restarts-allowed``, default 1): CrashLoopBackOff, OOMKilled,
  non-zero exits (a Job's failed pods count as its restarts);
* after the schedule grace: Unschedulable, with the scheduler's message (a cluster autoscaler that reports a
  scale-up for the pod holds the verdict off; one that reports it cannot help ends the grace); at once, with no
  autoscaler and no grace annotation, when no node matches the pod's node selector/affinity and preemption cannot
  help (no node will appear or change labels for it: the grace would only delay the verdict);
* after the readiness grace: a running container that is not ready, the grace computed from its probes as
  kubedog does (``rollout.probe_grace``), or ``deployctl.dev/readiness-grace-seconds``.

``Tuning`` reads the chart's annotations (on the workload, else on its pod template); the defaults need
none. Times are epoch seconds; ``now`` is passed in, so every rule is a table test.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from deployctl.rollout.pods import ContainerState, PodState, timestamp
from deployctl.rollout.states import Verdict

# Container states that never fix themselves during a rollout: report them at once.
FATAL_WAITING_REASONS = frozenset(
    {
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)
RESTARTS_ALLOWED = "deployctl.dev/restarts-allowed"
READINESS_GRACE = "deployctl.dev/readiness-grace-seconds"
SCHEDULE_GRACE = "deployctl.dev/schedule-grace-seconds"
DEFAULT_RESTARTS = 1
SCHEDULE_GRACE_SECONDS = 5.0  # no autoscaler: a pod the scheduler rejected stays rejected
SCHEDULE_GRACE_AUTOSCALED = 45.0  # an autoscaler may add a node: it says so within this (CA scans every 10 s)
# The scheduler's reason for a node that can never take the pod by itself (terminating pods, taints of nodes not
# yet ready, insufficient resources can pass; a label nobody has stays missing), and its word on preemption.
NEVER_FITS = re.compile(r"\d+ node\(s\) didn't match Pod's node affinity/selector")
NO_PREEMPTION = "Preemption is not helpful for scheduling"
READINESS_GRACE_NO_PROBE = 10.0  # running, no readiness probe, not ready: the kubelet should have said ready
# Autoscaler events on a pod: a node is coming (cluster-autoscaler, Karpenter) / none will.
SCALE_UP = frozenset({"TriggeredScaleUp", "Nominated"})
NO_SCALE_UP = frozenset({"NotTriggerScaleUp"})
FAILED_CREATE = "FailedCreate"  # a controller that cannot create its pods
JUDGED_EVENTS = SCALE_UP | NO_SCALE_UP | {FAILED_CREATE}  # the only event reasons a verdict reads


@dataclass(frozen=True)
class Tuning:
    """How patient the verdicts are with a workload: restarts allowed, readiness and scheduling grace."""

    restarts_allowed: int = DEFAULT_RESTARTS
    readiness_grace: float | None = None  # None: from the container's probes
    schedule_grace: float | None = None  # None: SCHEDULE_GRACE_SECONDS, or _AUTOSCALED with an autoscaler
    autoscaler: bool = False  # the cluster runs one (cluster-autoscaler or Karpenter)

    @property
    def scheduling(self) -> float:
        if self.schedule_grace is not None:
            return self.schedule_grace
        return SCHEDULE_GRACE_AUTOSCALED if self.autoscaler else SCHEDULE_GRACE_SECONDS


def tuning_from(*annotation_sets: Mapping[str, str] | None, autoscaler: bool = False) -> Tuning:
    """Tuning from annotations, the first set that has a key wins (a workload's, then its pod template's).
    A value that is not a non-negative number is ignored (the default applies)."""

    def number(key: str) -> float | None:
        for found in annotation_sets:
            raw = (found or {}).get(key)
            if raw is None:
                continue
            try:
                value = float(str(raw).strip())
            except ValueError:
                return None
            return value if value >= 0 else None
        return None

    restarts = number(RESTARTS_ALLOWED)
    return Tuning(
        restarts_allowed=int(restarts) if restarts is not None else DEFAULT_RESTARTS,
        readiness_grace=number(READINESS_GRACE),
        schedule_grace=number(SCHEDULE_GRACE),
        autoscaler=autoscaler,
    )


@dataclass(frozen=True)
class VerdictContext:
    """What a verdict is judged with besides the objects: tuning, the time (None: only the signals that need
    no clock), the namespace's recent events, and when this rollout began (older events are not its own)."""

    tuning: Tuning = field(default_factory=Tuning)
    now: float | None = None
    events: tuple[EventState, ...] = ()
    since: float | None = None


@dataclass(frozen=True)
class EventState:
    """A Kubernetes Event, reduced: which object, why, when (the latest occurrence)."""

    kind: str
    name: str
    reason: str
    message: str
    type: str = "Normal"
    time: float | None = None
    count: int = 1


def event_state(obj: Mapping[str, Any]) -> EventState:
    """From an Event as a JSON dict (core/v1 or events.k8s.io/v1)."""
    involved = obj.get("involvedObject") or obj.get("regarding") or {}
    series = obj.get("series") or {}
    when = (
        timestamp(series.get("lastObservedTime"))
        or timestamp(obj.get("lastTimestamp"))
        or timestamp(obj.get("eventTime"))
        or timestamp(obj.get("firstTimestamp"))
        or timestamp((obj.get("metadata") or {}).get("creationTimestamp"))
    )
    return EventState(
        kind=str(involved.get("kind", "")),
        name=str(involved.get("name", "")),
        reason=str(obj.get("reason") or ""),
        message=str(obj.get("message") or obj.get("note") or ""),
        type=str(obj.get("type") or "Normal"),
        time=when,
        count=int(series.get("count") or obj.get("count") or 1),
    )


def _failed(pod: PodState, container: ContainerState, reason: str, detail: str) -> Verdict:
    return Verdict(
        "failed",
        f"pod {pod.name} container {container.name}: {reason}" + (f": {detail}" if detail else ""),
        pod=pod.name,
        container=container.name,
        reason=reason,
    )


def container_failure(pod: PodState, c: ContainerState, tuning: Tuning, now: float | None) -> Verdict | None:
    """A container's failure signal (fatal waiting reason, crash, not ready past its grace), else None."""
    if c.waiting_reason in FATAL_WAITING_REASONS:
        return _failed(pod, c, c.waiting_reason, c.waiting_message)
    # Down after a bad exit (backing off, or terminated): restartCount restarts and this exit. The kubelet
    # restarts the first crash at once, so CrashLoopBackOff means the restart did not help.
    crashing = c.waiting_reason == "CrashLoopBackOff"
    ended_badly = c.exit_code is not None and c.failed_exit
    restarts = max(c.restart_count, 1) if crashing else c.restart_count
    exits = restarts + 1 if (crashing or ended_badly) else 0
    final = ended_badly and pod.restart_policy == "Never"  # no restart is coming
    if exits and (exits > tuning.restarts_allowed or final):
        reason = "OOMKilled" if "OOMKilled" in (c.terminated_reason, c.last_terminated_reason) else ""
        reason = reason or c.waiting_reason or "Error"
        last = f"last exit: {c.exit_reason}" if c.failed_exit else ""
        detail = "; ".join(part for part in (c.waiting_message, last) if part)
        detail += " (restartPolicy Never)" if final else f" ({restarts} restart(s), {tuning.restarts_allowed} allowed)"
        return _failed(pod, c, reason, detail)
    if now is None or c.init or c.ready or c.running_since is None or c.started is False or pod.deleting:
        return None
    grace = tuning.readiness_grace
    if grace is None:
        grace = c.readiness_grace if c.readiness_grace is not None else READINESS_GRACE_NO_PROBE
    running = now - c.running_since
    if running > grace:
        return _failed(pod, c, "NotReady", f"running for {running:.0f}s and not ready (readiness grace {grace:.0f}s)")
    return None


def pod_failure(
    pod: PodState, tuning: Tuning, now: float | None, events: Sequence[EventState] = (), *, readiness: bool = True
) -> Verdict | None:
    """The first failure signal of one pod, else None (``readiness=False``: a Job's pods need not be ready)."""
    if pod.deleting:
        return None
    for c in pod.containers:
        verdict = container_failure(pod, c if readiness else replace(c, ready=True), tuning, now)
        if verdict is not None:
            return verdict
    return unschedulable(pod, tuning, now, events)


def unschedulable(
    pod: PodState, tuning: Tuning, now: float | None, events: Sequence[EventState] = ()
) -> Verdict | None:
    """A pod the scheduler rejected for longer than its grace, with no scale-up coming, as a failure."""
    if now is None or pod.unschedulable is None or pod.phase != "Pending":
        return None
    reasons = [e.reason for e in sorted(events, key=lambda e: e.time or 0) if e.name == pod.name]
    autoscaler = next((r for r in reversed(reasons) if r in SCALE_UP | NO_SCALE_UP), None)
    if autoscaler in SCALE_UP:
        return None  # a node is being added for it
    since = pod.unschedulable.since or pod.created_at or now
    waited = now - since
    if autoscaler is None and waited <= tuning.scheduling and not _never_fits(pod.unschedulable.message, tuning):
        return None
    detail = pod.unschedulable.message or "no node fits it"
    if autoscaler in NO_SCALE_UP:
        detail += "; the cluster autoscaler cannot add a node for it"
    return Verdict(
        "failed",
        f"pod {pod.name}: Unschedulable for {waited:.0f}s: {detail}",
        pod=pod.name,
        reason="Unschedulable",
    )


def _never_fits(message: str, tuning: Tuning) -> bool:
    """No autoscaler, no grace asked for, and the scheduler says every node fails the pod's node selector/affinity
    and preemption cannot help: waiting the grace changes nothing."""
    if tuning.autoscaler or tuning.schedule_grace is not None or NO_PREEMPTION not in message:
        return False
    head, _, reasons = message.split(". preemption:", 1)[0].partition(" nodes are available: ")
    found = [r.strip() for r in reasons.rstrip(".").split(", ")]
    return head.startswith("0/") and bool(reasons) and all(NEVER_FITS.fullmatch(r) for r in found)


def first_failure(
    pods: Iterable[PodState],
    tuning: Tuning,
    now: float | None,
    events: Sequence[EventState] = (),
    *,
    readiness: bool = True,
) -> Verdict | None:
    for pod in sorted(pods, key=lambda p: p.name):
        verdict = pod_failure(pod, tuning, now, events, readiness=readiness)
        if verdict is not None:
            return verdict
    return None


def controller_failure(events: Sequence[EventState], kind: str, name: str, since: float | None) -> Verdict | None:
    """A controller that cannot create its pods (quota, admission, PodSecurity): a ``FailedCreate`` Warning
    about the workload, seen after ``since`` (earlier ones belong to an earlier rollout)."""
    for e in events:
        mine = e.kind == kind and e.name == name and e.reason == FAILED_CREATE and e.type == "Warning"
        if mine and (since is None or (e.time is not None and e.time >= since - 1)):
            return Verdict("failed", f"{kind.lower()} {name}: FailedCreate: {e.message}", reason="FailedCreate")
    return None
