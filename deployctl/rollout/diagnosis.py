"""The diagnosis of a failed rollout, in a few lines: the recent events of the failed resource, of its pod
(and of the pod's ReplicaSet), and the last lines of the failing container's current and previous logs
where the cluster has them ("no logs available" and why, where it does not: a container that never
started, a previous container the kubelet no longer keeps, a node without a kubelet such as kwok's).

Every read is bounded (a few seconds) and none can fail the verdict it explains: errors become lines.
The calls go through ``core``, a ``kubernetes.client.CoreV1Api`` (tests pass recorded responses).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from deployctl.rollout.signals import EventState, event_state
from deployctl.rollout.states import Verdict

EVENT_LINES = 8
LOG_LINES = 10
REQUEST_TIMEOUT = 5
SINCE_SLACK = 10.0  # seconds before the watch began that still belong to this rollout (helm applied it)


def collect(
    api: Any, namespace: str, verdict: Verdict, *, since: float | None = None, uid: str | None = None
) -> list[str]:
    """The diagnosis of ``verdict`` read from the cluster (``api``: a kubernetes ApiClient); events of the
    resource from before ``since`` (an earlier rollout's) or of another object of its name (``uid``) are left out."""
    from kubernetes import client

    return diagnose(client.CoreV1Api(api), namespace, verdict, now=time.time(), since=since, uid=uid)


def _reason(exc: BaseException) -> str:
    """``HTTP 400: previous terminated container "api" in pod "x" not found`` from an API error."""
    body = getattr(exc, "body", None)
    try:
        message = str(json.loads(body).get("message", "")) if body else ""
    except (ValueError, AttributeError, TypeError):
        message = str(body or "")
    lines = str(exc).strip().splitlines()
    text = message.strip() or str(getattr(exc, "reason", "") or "").strip() or (lines[0] if lines else "")
    status = getattr(exc, "status", None)
    prefix = f"HTTP {status}" if status else type(exc).__name__
    return f"{prefix}: {text}" if text else prefix


def diagnose(
    core: Any, namespace: str, verdict: Verdict, *, now: float, since: float | None = None, uid: str | None = None
) -> list[str]:
    # (kind, name, uid, since): a pod's events by its uid (a StatefulSet's pod-1 of an earlier rollout had its
    # own); the resource's by its uid (a hook Job is re-created) and time (a StatefulSet is not)
    objects: list[tuple[str, str, str | None, float | None]] = []
    if verdict.resource and "/" in verdict.resource:
        kind, name = verdict.resource.split("/", 1)
        objects.append((kind, name, uid, since))
    pod: dict[str, Any] | None = None
    if verdict.pod:
        try:
            pod = core.api_client.sanitize_for_serialization(
                core.read_namespaced_pod(verdict.pod, namespace, _request_timeout=REQUEST_TIMEOUT)
            )
        except Exception:  # noqa: BLE001 (the pod may be gone; its events and logs may still say something)
            pod = None
        meta = (pod or {}).get("metadata") or {}
        objects.append(("Pod", verdict.pod, meta.get("uid"), None))
        owner = next((o for o in meta.get("ownerReferences") or ()), None)
        if owner and owner.get("kind") == "ReplicaSet":
            objects.append(("ReplicaSet", str(owner.get("name")), owner.get("uid"), None))
    events: list[EventState] = []
    for kind, name, object_uid, after in objects:
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        selector += f",involvedObject.uid={object_uid}" if object_uid else ""
        try:
            listed = core.list_namespaced_event(namespace, field_selector=selector, _request_timeout=REQUEST_TIMEOUT)
            found = [event_state(e) for e in core.api_client.sanitize_for_serialization(listed).get("items") or ()]
        except Exception as exc:  # noqa: BLE001 (a diagnosis never fails the verdict)
            found = [EventState(kind, name, "EventsUnavailable", _reason(exc), "Warning")]
        if after is not None:
            found = [e for e in found if e.time is None or e.time >= after - SINCE_SLACK]
        events += found
    lines = format_events(events, now)
    if verdict.pod:
        lines += container_logs(core, namespace, verdict.pod, verdict.container, pod)
    return lines


def format_events(events: Sequence[EventState], now: float) -> list[str]:
    """The latest events, oldest first: ``event Warning BackOff pod/api-1 (x3, 4s ago): message``."""
    if not events:
        return ["events: none recorded"]
    recent = sorted(events, key=lambda e: e.time or 0)[-EVENT_LINES:]
    lines = []
    for e in recent:
        when = f", {max(now - e.time, 0):.0f}s ago" if e.time else ""
        count = f"x{e.count}" if e.count > 1 else ""
        extra = ", ".join(part for part in (count, when.lstrip(", ")) if part)
        lines.append(
            f"event {e.type} {e.reason} {e.kind.lower()}/{e.name}" + (f" ({extra})" if extra else "") + f": {e.message}"
        )
    return lines


def _runs(pod: dict[str, Any] | None, container: str) -> tuple[str, str]:
    """Why there would be no current / previous log of ``container`` ("" when there may be one). A container
    backing off after a crash still has its last run's log (current); the run before is ``previous``."""
    status = (pod or {}).get("status") or {}
    for cs in [*(status.get("initContainerStatuses") or ()), *(status.get("containerStatuses") or ())]:
        if cs.get("name") == container:
            state = cs.get("state") or {}
            ran_before = bool((cs.get("lastState") or {}).get("terminated")) or int(cs.get("restartCount") or 0) > 0
            waiting = str((state.get("waiting") or {}).get("reason") or "waiting")
            current = (
                "" if state.get("running") or state.get("terminated") or ran_before else f"it never started: {waiting}"
            )
            return current, "" if ran_before else "it has not restarted"
    return "", ""  # status unknown: ask the cluster


def container_logs(
    core: Any, namespace: str, pod_name: str, container: str | None, pod: dict[str, Any] | None
) -> list[str]:
    if container is None:
        containers = ((pod or {}).get("spec") or {}).get("containers") or []
        if not containers:
            return [f"logs of pod/{pod_name}: no logs available (no container to read)"]
        container = str(containers[0].get("name"))
    lines: list[str] = []
    for which, missing in zip(("current", "previous"), _runs(pod, container), strict=True):
        what = f"logs of pod/{pod_name} container {container} ({which})"
        if missing:
            lines.append(f"{what}: no logs available ({missing})")
            continue
        try:
            text = core.read_namespaced_pod_log(
                pod_name,
                namespace,
                container=container,
                previous=which == "previous",
                tail_lines=LOG_LINES,
                _request_timeout=REQUEST_TIMEOUT,
            )
        except Exception as exc:  # noqa: BLE001 (no logs is a fact to report, not a failure)
            lines.append(f"{what}: no logs available ({_reason(exc)})")
            continue
        tail = str(text or "").rstrip("\n").splitlines()[-LOG_LINES:]
        if not tail:
            lines.append(f"{what}: empty")
            continue
        lines.append(f"{what}, last {len(tail)} line(s):")
        lines += [f"| {line}" for line in tail]
    return lines
