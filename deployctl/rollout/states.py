"""Rollout facts, pure: pods and containers as small frozen states, the ``Verdict``, and ``release_health``,
THE definition of healthy (used by ``deploy`` after its watch, ``status`` and the promotion gate).

Snapshots of API objects (plain dicts, camelCase as the API serves them) become these states; the
failure signals are in ``verdicts``, the per-kind rollout rules in ``kinds``, and which pods belong to
which workload of a release in ``tracking`` (all table-tested in tests/unit/test_rollout.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
DIGEST_ANNOTATION = "deployctl.dev/image-digest"


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


@dataclass(frozen=True)
class Verdict:
    state: str  # progressing | complete | failed
    message: str  # first line: the one-line summary; then the diagnosis, one indented line each
    pod: str | None = None
    container: str | None = None
    reason: str | None = None
    resource: str | None = None  # Kind/name of the workload (or hook) the verdict is about
    diagnosis: tuple[str, ...] = ()  # recent events, last log lines (see ``diagnosis``)

    @property
    def done(self) -> bool:
        return self.state != "progressing"

    @property
    def summary(self) -> str:
        return self.message.split("\n", 1)[0]

    def diagnosed(self, lines: Sequence[str]) -> Verdict:
        """The verdict with its diagnosis: in ``diagnosis`` and, one indented line each, after the summary."""
        if not lines:
            return self
        message = "\n".join([self.summary, *(f"  {line}" for line in lines)])
        return replace(self, message=message, diagnosis=tuple(lines))

    def details(self) -> dict[str, object]:
        """What a failure's JSON carries (``error`` object): the resource, pod, container, reason, diagnosis."""
        return {
            "resource": self.resource,
            "pod": self.pod,
            "container": self.container,
            "reason": self.reason,
            "diagnosis": list(self.diagnosis),
        }


# --------------------------------------------------------------------------- snapshots from API objects


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


# --------------------------------------------------------------------------- health: one definition


@dataclass(frozen=True)
class WorkloadHealth:
    """One workload of a release as it runs now: what it should run, its rollout verdict, what serves."""

    kind: str
    name: str
    desired_digest: str | None  # the digest its spec (pod template) names
    desired: int  # pods that should run it (a Job: completions; held-back pods excluded)
    verdict: Verdict
    serving: tuple[tuple[str | None, int], ...] = ()  # (digest, ready pods; a Job: completed pods), most first
    held_back: int = 0  # pods its update strategy keeps on the old revision (StatefulSet partition, OnDelete)
    confirmed: int = 0  # counted pods of the desired digest whose imageID the kubelet reported
    autoscaled: int | None = None  # an HPA of the release scales it: its minReplicas (``desired`` is that floor)
    terminating: int = 0  # pods being deleted: shown, never judged

    @property
    def ready(self) -> int:
        return sum(count for _, count in self.serving)

    @property
    def ready_desired(self) -> int:
        """Ready pods that run the desired digest (the old ReplicaSet's pods do not count)."""
        return sum(count for digest, count in self.serving if digest == self.desired_digest)


@dataclass(frozen=True)
class Health:
    healthy: bool
    reasons: tuple[str, ...] = ()
    proof: str = ""  # what was checked, per workload

    @property
    def summary(self) -> str:
        return "healthy" if self.healthy else "; ".join(self.reasons)


def serving(pods: Sequence[PodState], *, completed: bool = False) -> tuple[tuple[str | None, int], ...]:
    """Pods that serve (ready, or done: a pod that ran to completion), not terminating, counted by the digest
    they run, most first; ``completed``: only the done ones (a Job's running pod may be ready, not done)."""
    counts: dict[str | None, int] = {}
    for pod in pods:
        if (pod.done or (pod.ready and not completed)) and not pod.deleting:
            counts[pod.digest] = counts.get(pod.digest, 0) + 1
    return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0] or "")))


def _proof(w: WorkloadHealth) -> str:
    noun = "completed" if w.kind == "Job" else "ready"
    text = f"{w.kind.lower()} {w.name}: {w.ready_desired}/{w.desired} {noun} pods run {w.desired_digest}"
    if w.autoscaled is not None:
        floor = f"HPA minReplicas {w.autoscaled}"
        text = f"{w.kind.lower()} {w.name}: {w.ready_desired} ready pods run {w.desired_digest} ({floor})"
    if w.ready_desired:
        text += (
            f" (imageID confirmed on {w.confirmed})" if w.confirmed else " (pod spec; the kubelet reports no imageID)"
        )
    if w.held_back:
        text += f"; {w.held_back} held back by its update strategy"
    return text


def release_health(
    helm_status: str | None,
    workloads: Sequence[WorkloadHealth],
    digest: str | None,
    hooks: Sequence[Verdict] = (),
) -> Health:
    """THE definition of healthy: the helm release is ``deployed``, none of its revision's hooks failed
    (``hooks``: the failed ones), every workload's rollout is complete with all its pods of the desired digest
    ready (a Job: completed), every workload's spec names ``digest`` (when given), and no pod of another digest
    serves (beyond the pods its update strategy holds back). Terminating pods count for nothing."""
    reasons: list[str] = []
    if helm_status is None:
        return Health(False, ("the release is not installed",))
    if helm_status != "deployed":
        reasons.append(f"helm release is {helm_status}")
    reasons += [hook.summary for hook in hooks]
    if not workloads:
        reasons.append("the release has no workloads to verify")
    for w in workloads:
        what = f"{w.kind.lower()} {w.name}"
        if w.verdict.state != "complete":
            reasons.append(f"{what}: rollout {w.verdict.state}: {w.verdict.summary}")
        if digest is not None and w.desired_digest != digest:
            reasons.append(f"{what} runs {w.desired_digest or 'no pinned digest'}, not {digest}")
        if w.verdict.state == "complete" and w.ready_desired < w.desired:
            reasons.append(f"{what}: {w.ready_desired} of {w.desired} pods of its digest ready")
        if w.held_back and not w.ready_desired:
            reasons.append(f"{what}: no pod runs {w.desired_digest} yet: its update strategy holds back {w.held_back}")
        others = [(d, n) for d, n in w.serving if d != w.desired_digest]
        if sum(n for _, n in others) > w.held_back:
            listed = ", ".join(f"{n} of {d or 'unpinned'}" for d, n in others)
            reasons.append(f"{what}: pods of another digest serve ({listed})")
    return Health(not reasons, tuple(reasons), "; ".join(_proof(w) for w in workloads))


def what_serves(workloads: Sequence[WorkloadHealth], failing: str | None) -> str:
    """What serves a release now, from its pods (not from what a rollout usually leaves): per workload, the ready
    pods of each digest, said to be of ``failing`` (the digest that just failed) or of another, or that none is
    ready. A failed StatefulSet of one pod replaces that pod: nothing of the previous digest serves then."""
    parts = []
    for w in workloads:
        what = f"{w.kind.lower()} {w.name}"
        if not w.serving:
            pods = "no pod" if w.kind != "Job" else "no completed pod"
            parts.append(f"{what}: {pods} serves (none is ready)")
            continue
        counts = [
            f"{n} ready pod(s) of {'the failing ' if d == failing else ''}{d or 'an unpinned image'}"
            for d, n in w.serving
        ]
        parts.append(f"{what}: {', '.join(counts)}")
    return "; ".join(parts) if parts else "the release has no workloads"
