"""Pod states, pure: a pod's phase, conditions and containers read from its API object (waiting reasons, exits,
restarts, probe grace)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str = ""
    message: str = ""
    since: float | None = None  # lastTransitionTime, epoch seconds


@dataclass(frozen=True)
class ContainerState:
    name: str
    ready: bool = False
    waiting_reason: str = ""
    waiting_message: str = ""
    restart_count: int = 0
    last_terminated_reason: str = ""
    last_exit_code: int | None = None
    terminated_reason: str = ""  # the current state, when terminated
    exit_code: int | None = None
    running_since: float | None = None  # state.running.startedAt
    started: bool | None = None  # the startup probe passed (None: not reported)
    init: bool = False  # an init container (runs to completion before the others)
    readiness_grace: float | None = None  # seconds its readiness probe may fail after start (None: no probe)
    image_digest: str | None = None  # the digest the kubelet reports it runs (imageID), when it does

    @property
    def failed_exit(self) -> bool:
        """Its last run ended badly (non-zero exit, OOMKilled), counting the current run when it has ended."""
        if self.exit_code is not None or self.terminated_reason:
            return self.exit_code != 0 or self.terminated_reason not in ("", "Completed")
        if self.last_exit_code is not None or self.last_terminated_reason:
            return self.last_exit_code != 0 or self.last_terminated_reason not in ("", "Completed")
        return False

    @property
    def exit_reason(self) -> str:
        """Why its last run ended: ``OOMKilled``, ``Error (code 1)``..."""
        reason = self.terminated_reason or self.last_terminated_reason or "terminated"
        code = self.exit_code if self.exit_code is not None else self.last_exit_code
        return f"{reason} (code {code})" if code is not None else reason


@dataclass(frozen=True)
class PodState:
    name: str
    containers: tuple[ContainerState, ...] = ()
    phase: str = "Pending"
    deleting: bool = False
    ready: bool = False  # the pod's Ready condition: it serves traffic
    digest: str | None = None  # the digest its first container runs (imageID when reported, else the spec's)
    template_hash: str = ""  # pod-template-hash: which ReplicaSet it belongs to
    labels: Mapping[str, str] | None = None
    owner: tuple[str, str] | None = None  # (kind, name) of its controller
    owner_uid: str = ""  # its controller's uid: a workload recreated under the same name is another owner
    created_at: float | None = None
    unschedulable: Condition | None = None  # PodScheduled=False/Unschedulable: the scheduler's message
    reason: str = ""  # status.reason (Evicted, DeadlineExceeded...)
    message: str = ""
    restart_policy: str = "Always"
    confirmed: bool = False  # the kubelet reported the first container's imageID, and it names ``digest``
    annotations: Mapping[str, str] | None = None

    def label(self, key: str) -> str:
        return (self.labels or {}).get(key, "")

    @property
    def done(self) -> bool:
        return self.phase == "Succeeded"


def timestamp(value: object) -> float | None:
    """An API timestamp (RFC 3339, ``Z`` or an offset; or a datetime) as epoch seconds."""
    if isinstance(value, datetime):
        return value.timestamp()
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


def conditions_of(status: Mapping[str, Any]) -> tuple[Condition, ...]:
    return tuple(
        Condition(
            type=str(c.get("type", "")),
            status=str(c.get("status", "")),
            reason=str(c.get("reason") or ""),
            message=str(c.get("message") or ""),
            since=timestamp(c.get("lastTransitionTime")),
        )
        for c in status.get("conditions") or ()
    )


def probe_grace(readiness: Mapping[str, Any] | None, startup: Mapping[str, Any] | None) -> float | None:
    """Seconds a container's readiness probe may keep failing once it started, before that is a failure:
    kubedog's formula (werf/kubedog pkg/tracker/pod/probes.go), counted from the container's start: the
    delay before the first probe, a probe's timeout, the failures the threshold allows, half a period of
    slack, another timeout. With a startup probe the clock starts when it passed (``started``)."""
    if not readiness:
        return None

    def field(probe: Mapping[str, Any], name: str, default: int) -> int:
        value = probe.get(name)
        return int(value) if value is not None else default

    period, timeout = field(readiness, "periodSeconds", 10), field(readiness, "timeoutSeconds", 1)
    failures, successes = field(readiness, "failureThreshold", 3), field(readiness, "successThreshold", 1)
    initial = period + field(readiness, "initialDelaySeconds", 0)
    if startup:
        initial = period  # the readiness clock starts once the startup probe passed
    grace = initial + timeout + max(failures + successes - 3, 0) * period + period / 2 + timeout
    return float(max(grace, 0))


def _container(cs: Mapping[str, Any], spec: Mapping[str, Any], *, init: bool) -> ContainerState:
    state = cs.get("state") or {}
    waiting = state.get("waiting") or {}
    terminated = state.get("terminated") or {}
    last = (cs.get("lastState") or {}).get("terminated") or {}
    running = state.get("running") or {}
    return ContainerState(
        name=str(cs.get("name", "")),
        ready=bool(cs.get("ready")),
        waiting_reason=str(waiting.get("reason") or ""),
        waiting_message=str(waiting.get("message") or ""),
        restart_count=int(cs.get("restartCount") or 0),
        last_terminated_reason=str(last.get("reason") or ""),
        last_exit_code=int(last["exitCode"]) if last.get("exitCode") is not None else None,
        terminated_reason=str(terminated.get("reason") or ""),
        exit_code=int(terminated["exitCode"]) if terminated.get("exitCode") is not None else None,
        running_since=timestamp(running.get("startedAt")) if running else None,
        started=bool(cs["started"]) if cs.get("started") is not None else None,
        init=init,
        readiness_grace=None if init else probe_grace(spec.get("readinessProbe"), spec.get("startupProbe")),
        image_digest=digest_in(str(cs.get("imageID") or "")),
    )


def pod_state(obj: Mapping[str, Any]) -> PodState:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    specs = {str(c.get("name", "")): c for c in [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]}
    statuses = [(cs, True) for cs in status.get("initContainerStatuses") or ()]
    statuses += [(cs, False) for cs in status.get("containerStatuses") or ()]
    containers = tuple(_container(cs, specs.get(str(cs.get("name", ""))) or {}, init=init) for cs, init in statuses)
    conditions = conditions_of(status)
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
    unschedulable = next(
        (c for c in conditions if c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable"),
        None,
    )
    first = (spec.get("containers") or [{}])[0]
    wanted = digest_in(str(first.get("image", "")))
    reported = next((c.image_digest for c in containers if not c.init and c.name == first.get("name")), None)
    owner = next((o for o in meta.get("ownerReferences") or () if o.get("controller")), None)
    return PodState(
        name=str(meta.get("name", "")),
        containers=containers,
        phase=str(status.get("phase") or "Pending"),
        deleting=meta.get("deletionTimestamp") is not None,
        ready=ready,
        digest=reported or wanted,
        template_hash=str((meta.get("labels") or {}).get("pod-template-hash", "")),
        labels=dict(meta.get("labels") or {}),
        owner=(str(owner.get("kind", "")), str(owner.get("name", ""))) if owner else None,
        owner_uid=str(owner.get("uid") or "") if owner else "",
        created_at=timestamp(meta.get("creationTimestamp")),
        unschedulable=unschedulable,
        reason=str(status.get("reason") or ""),
        message=str(status.get("message") or ""),
        restart_policy=str(spec.get("restartPolicy") or "Always"),
        confirmed=reported is not None and reported == wanted,
        annotations=dict(meta.get("annotations") or {}),
    )


def digest_in(image: str) -> str | None:
    """The digest an image reference pins (``repo@sha256:...``), else None."""
    return image.partition("@")[2] or None
