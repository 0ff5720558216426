"""Verdict lag: how long after the cluster showed the decisive condition of a failure deployctl said so.

An ``Observer`` watches one namespace (Pods and Jobs) from the benchmark process while ``deployctl deploy``
runs, keeping every version of every object with the moment it arrived. After the run, ``decisive`` finds the
first moment the failure class's condition held:

* crash loop: a container waiting in ``CrashLoopBackOff``; API time: its last termination's ``finishedAt``;
* pull error: a container waiting in ``ErrImagePull``/``ImagePullBackOff``; API time: the pod's first pull
  event's ``firstTimestamp`` (else its Ready condition's ``lastTransitionTime``, written with it);
* unschedulable: ``PodScheduled=False``/``Unschedulable``; API time: its ``lastTransitionTime``;
* never ready: a running container not ready, plus its readiness grace (from its probes, as deployctl
  computes it); API time: its ``startedAt`` plus the grace;
* job fails: the Job's ``Failed`` condition; API time: its ``lastTransitionTime``.

Two lags per run: against the API's timestamp (whole seconds: the API server truncates them, so this lag reads
up to 1 s long) and against the moment the observer saw the condition (milliseconds; it arrives a few ms after
the API server wrote it, so this lag reads a little short). The true lag lies between the two.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployctl.adapters.helm_argv import Kube
from deployctl.adapters.kube.client import api_client, list_call
from deployctl.rollout.kinds import KINDS, lists
from deployctl.rollout.pods import probe_grace, timestamp
from deployctl.rollout.signals import READINESS_GRACE, READINESS_GRACE_NO_PROBE
from deployctl.rollout.watch import EVENT_LISTS

CALLS = {**lists(tuple(KINDS)), **EVENT_LISTS}  # kind -> its list call

SIGNALS = ("crash", "pull", "unschedulable", "never-ready", "job-failed")
PULL_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff"})


@dataclass(frozen=True)
class Decisive:
    """When the decisive condition appeared: by the API's timestamp and by the observer's clock."""

    api: float | None
    seen: float | None
    what: str


class Observer:
    """Every version of the namespace's Pods and Jobs, each with the moment it arrived (``time.time()``)."""

    def __init__(self, kubeconfig: Path, context: str | None, namespace: str) -> None:
        self.api = api_client(Kube(kubeconfig, context))
        self.namespace = namespace
        self.seen: list[tuple[float, str, dict[str, Any]]] = []
        self._stop = threading.Event()
        self._ready = threading.Barrier(3)
        self._threads = [threading.Thread(target=self._pump, args=(k,), daemon=True) for k in ("Pod", "Job")]

    def __enter__(self) -> Observer:
        for thread in self._threads:
            thread.start()
        self._ready.wait(timeout=30)  # both watches are open before deployctl starts
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()

    def _pump(self, kind: str) -> None:
        from kubernetes import watch

        call = list_call(self.api, CALLS[kind])
        listed = call(self.namespace)
        for item in self.api.sanitize_for_serialization(listed).get("items") or ():
            self.seen.append((time.time(), kind, item))
        self._ready.wait(timeout=30)
        watcher = watch.Watch()
        try:
            for event in watcher.stream(
                call, self.namespace, resource_version=listed.metadata.resource_version, timeout_seconds=600
            ):
                arrived = time.time()
                if self._stop.is_set():
                    return
                self.seen.append((arrived, kind, self.api.sanitize_for_serialization(event["object"])))
        except Exception:  # noqa: BLE001 (the namespace is deleted after the run; the watch may end with it)
            return
        finally:
            watcher.stop()

    def events(self) -> list[dict[str, Any]]:
        listed = list_call(self.api, CALLS["Event"])(self.namespace)
        items: list[dict[str, Any]] = self.api.sanitize_for_serialization(listed).get("items") or []
        return items


def _statuses(pod: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    status = pod.get("status") or {}
    return [*(status.get("initContainerStatuses") or ()), *(status.get("containerStatuses") or ())]


def _grace(pod: Mapping[str, Any], name: str) -> float:
    """The readiness grace deployctl gives container ``name`` (its annotation, else its probes, else the default)."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    if READINESS_GRACE in annotations:
        return float(annotations[READINESS_GRACE])
    spec: Mapping[str, Any] = next(
        (c for c in (pod.get("spec") or {}).get("containers") or () if c.get("name") == name), {}
    )
    grace = probe_grace(spec.get("readinessProbe"), spec.get("startupProbe"))
    return grace if grace is not None else READINESS_GRACE_NO_PROBE


def _pull_event_time(events: list[dict[str, Any]], pod: str) -> float | None:
    times = [
        timestamp(e.get("firstTimestamp")) or timestamp(e.get("eventTime"))
        for e in events
        if (e.get("involvedObject") or {}).get("name") == pod
        and (e.get("reason") in ("Failed", "ErrImagePull", "BackOff") and "pull" in str(e.get("message")).lower())
    ]
    found = [t for t in times if t is not None]
    return min(found) if found else None


def _match(signal: str, kind: str, obj: Mapping[str, Any]) -> tuple[float, str] | None:
    """(extra seconds after its arrival, what) when ``obj`` shows ``signal``'s condition, else None; its API time
    is ``_api_time``'s."""
    name = str((obj.get("metadata") or {}).get("name", ""))
    conditions = (obj.get("status") or {}).get("conditions") or ()
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return None
    if signal == "job-failed" and kind == "Job":
        if any(c.get("type") == "Failed" and c.get("status") == "True" for c in conditions):
            return 0.0, f"job/{name} Failed"
    elif signal == "unschedulable" and kind == "Pod":
        for c in conditions:
            if c.get("type") == "PodScheduled" and c.get("status") == "False" and c.get("reason") == "Unschedulable":
                return 0.0, f"pod/{name} Unschedulable"
    elif kind == "Pod":
        for cs in _statuses(obj):
            state = cs.get("state") or {}
            waiting = str((state.get("waiting") or {}).get("reason") or "")
            if signal == "crash" and waiting == "CrashLoopBackOff":
                return 0.0, f"pod/{name} CrashLoopBackOff"
            if signal == "pull" and waiting in PULL_REASONS:
                return 0.0, f"pod/{name} {waiting}"
            if signal == "never-ready" and state.get("running") and not cs.get("ready"):
                grace = _grace(obj, str(cs.get("name")))
                return grace, f"pod/{name} not ready (grace {grace:.1f}s)"
    return None


def _api_time(signal: str, obj: Mapping[str, Any], events: list[dict[str, Any]]) -> float | None:
    """The API's timestamp of ``signal``'s condition on ``obj`` (which shows it)."""
    name = str((obj.get("metadata") or {}).get("name", ""))
    conditions = (obj.get("status") or {}).get("conditions") or ()
    if signal == "job-failed":
        return next((timestamp(c.get("lastTransitionTime")) for c in conditions if c.get("type") == "Failed"), None)
    if signal == "unschedulable":
        return next(
            (timestamp(c.get("lastTransitionTime")) for c in conditions if c.get("type") == "PodScheduled"), None
        )
    if signal == "pull":
        ready: Mapping[str, Any] = next((c for c in conditions if c.get("type") == "Ready"), {})
        return _pull_event_time(events, name) or timestamp(ready.get("lastTransitionTime"))
    for cs in _statuses(obj):
        state = cs.get("state") or {}
        if signal == "crash" and (state.get("waiting") or {}).get("reason") == "CrashLoopBackOff":
            return timestamp(((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
        if signal == "never-ready" and state.get("running") and not cs.get("ready"):
            started = timestamp((state.get("running") or {}).get("startedAt"))
            return started + _grace(obj, str(cs.get("name"))) if started is not None else None
    return None


def decisive(signal: str, seen: list[tuple[float, str, dict[str, Any]]], events: list[dict[str, Any]]) -> Decisive:
    """The first appearance of ``signal``'s condition among the observed versions (see the module docstring): the
    earliest API timestamp of it, and the earliest moment the observer saw it (plus the grace, for never ready)."""
    api: list[float] = []
    first: tuple[float, str] | None = None
    for arrived, kind, obj in seen:
        matched = _match(signal, kind, obj)
        if matched is None:
            continue
        extra, what = matched
        if first is None or arrived + extra < first[0]:
            first = (arrived + extra, what)
        found = _api_time(signal, obj, events)
        if found is not None:
            api.append(found)
    return Decisive(min(api) if api else None, first[0] if first else None, first[1] if first else "not seen")
