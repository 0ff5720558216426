"""The rollout watch: API watches of the namespace (one per kind it needs) feed one ``View``, and
every workload of the release is judged on each change, concurrently, until the first fails, all complete,
or the time is up. The hook watch does the same for the hook Jobs and Pods helm creates while it runs.

A watch that ends (server timeout, 410 Gone) is restarted from a fresh list. A watch refused with 401/403
is not retried: the credential is wrong or expired, and saying "rollout not complete" after the timeout
would hide that (the Event watch only feeds the diagnosis: a refusal there degrades it, nothing more).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from deployctl.adapters.helm_argv import Kube
from deployctl.adapters.kube.client import ListCall, api_client, autoscaler_present, list_call, list_json, translate
from deployctl.core.errors import DeployctlError
from deployctl.rollout import diagnosis
from deployctl.rollout.hooks import hook_failure, uids
from deployctl.rollout.kinds import lists
from deployctl.rollout.signals import EventState, Tuning, VerdictContext, event_state
from deployctl.rollout.states import Verdict
from deployctl.rollout.tracking import ManifestWorkload, kinds_to_watch, release_verdict

log = logging.getLogger(__name__)

OPTIONAL = frozenset({"Event"})
EVENT_LISTS: dict[str, ListCall] = {"Event": ("CoreV1Api", "list_namespaced_event")}
# The routine events of pods coming and going (the scheduler's, the kubelet's, the controllers'): most of a
# namespace's events, and none a verdict reads (``signals``: an autoscaler's word on a pod, a controller's
# FailedCreate), so the watches leave them on the server; every app's watches listed and received the namespace's
# whole event history (issue 29). The diagnosis of a failure lists every event itself (``diagnosis.collect``).
ROUTINE_EVENTS = (
    "Scheduled",
    "Pulling",
    "Pulled",
    "Created",
    "Started",
    "Killing",
    "SuccessfulCreate",
    "SuccessfulDelete",
    "ScalingReplicaSet",
)
SELECTED = {"Event": {"field_selector": ",".join(f"reason!={reason}" for reason in ROUTINE_EVENTS)}}
MAX_EVENTS = 500
EVALUATE_EVERY = 0.5  # seconds: grace periods expire between API events


class WatchRefusedError(DeployctlError):
    """The API server refused a watch (401/403): ``error`` is the translated refusal."""

    def __init__(self, kind: str, error: DeployctlError) -> None:
        super().__init__(error.message, error.hint)
        self.kind = kind
        self.error = error


class NamespaceWatch:
    """Watches of ``kinds`` in one namespace, each in a thread, applied to ``view`` by ``poll``."""

    def __init__(self, kube: Kube, namespace: str, kinds: Mapping[str, ListCall]) -> None:
        self.kube = kube
        self.namespace = namespace
        self.api = api_client(kube)
        self.calls = dict(kinds)
        self.kinds = sorted(kinds)
        self.view: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in self.kinds if k != "Event"}
        self.events: dict[str, EventState] = {}
        self.synced: set[str] = set()
        self._queue: queue.Queue[tuple[str, str, Any]] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def ready(self) -> bool:
        """Every required kind has been listed once (before that a missing object means nothing)."""
        return set(self.kinds) - OPTIONAL <= self.synced

    def start(self) -> NamespaceWatch:
        for kind in self.kinds:
            call = list_call(self.api, self.calls[kind])
            thread = threading.Thread(target=self._pump, args=(kind, call), name=f"watch-{kind}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()

    def _pump(self, kind: str, call: Callable[..., Any]) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        while not self._stop.is_set():
            try:
                options = SELECTED.get(kind, {})
                listed = list_json(self.api, self.calls[kind], self.namespace, **options)
                self._queue.put((kind, "SYNC", listed))
                watcher = watch.Watch()
                for event in watcher.stream(
                    call,
                    self.namespace,
                    resource_version=listed["metadata"]["resourceVersion"],
                    **options,
                    timeout_seconds=30,
                    _request_timeout=40,
                    deserialize=False,  # the JSON as sent, as ``list_json``: no model built and turned back
                ):
                    if self._stop.is_set():
                        watcher.stop()
                        return
                    self._queue.put((kind, str(event["type"]), event["object"]))
            except ApiException as exc:
                if exc.status in (401, 403):
                    self._queue.put((kind, "REFUSED", exc))  # retrying cannot fix a refused credential
                    return
                log.debug("%s watch ended: %s; restarting", kind, exc)
                if self._stop.wait(1.0):
                    return
            except Exception as exc:  # noqa: BLE001 (a broken watch is restarted; the caller's deadline bounds it)
                log.debug("%s watch ended: %s; restarting", kind, exc)
                if self._stop.wait(1.0):
                    return

    def poll(self, timeout: float) -> bool:
        """Apply what arrived (waiting up to ``timeout`` for the first); True when something changed."""
        try:
            items = [self._queue.get(timeout=max(timeout, 0))]
        except queue.Empty:
            return False
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        for kind, event, obj in items:
            self._apply(kind, event, obj)
        return True

    def wake(self) -> None:
        """Have a ``poll`` that waits return now, nothing changed: its caller has something else to look at."""
        self._queue.put(("", "WAKE", None))

    def _apply(self, kind: str, event: str, obj: Any) -> None:
        if event == "WAKE":
            return
        if event == "REFUSED":
            error = translate(obj, self.kube, f"watch the {kind}s in {self.namespace}")
            if kind in OPTIONAL:
                log.debug("%s watch refused (%s): going on without it", kind, error.message)
                self.synced.add(kind)
                return
            raise WatchRefusedError(kind, error)
        if kind == "Event":
            self._apply_event(event, obj)
            return
        store = self.view[kind]
        if event == "SYNC":
            store.clear()
            for item in obj.get("items") or ():
                keep(store, item)
            self.synced.add(kind)
        elif event == "DELETED":
            name = obj["metadata"]["name"]
            if _uid_of(store.get(name)) in (None, _uid_of(obj)):  # not the object re-created under its name
                store.pop(name, None)
        elif event in ("ADDED", "MODIFIED"):
            keep(store, obj)

    def _apply_event(self, event: str, obj: dict[str, Any]) -> None:
        if event == "SYNC":
            self.events = {str(e["metadata"].get("uid")): event_state(e) for e in obj.get("items") or ()}
            self.synced.add("Event")
        elif event in ("ADDED", "MODIFIED"):
            self.events[str(obj["metadata"].get("uid"))] = event_state(obj)
        if len(self.events) > MAX_EVENTS:
            newest = sorted(self.events.items(), key=lambda item: item[1].time or 0)[-MAX_EVENTS:]
            self.events = dict(newest)

    def context(self, tuning: Tuning, since: float) -> VerdictContext:
        return VerdictContext(tuning=tuning, now=time.time(), events=tuple(self.events.values()), since=since)


def _uid_of(obj: Mapping[str, Any] | None) -> str | None:
    return str((obj.get("metadata") or {}).get("uid") or "") if obj is not None else None


def keep(store: dict[str, dict[str, Any]], obj: dict[str, Any]) -> None:
    """Put ``obj`` in ``store`` (name -> object) unless another object holds its name and ``obj`` is the older one:
    helm re-creates a hook Job under the same name while the old one is still being deleted, and the old one's
    late updates (its deletion going on) must not hide the new one."""
    meta = obj["metadata"]
    held = store.get(meta["name"])
    if held is not None and _uid_of(held) != _uid_of(obj):
        if meta.get("deletionTimestamp") and not held["metadata"].get("deletionTimestamp"):
            return
        if str(meta.get("creationTimestamp") or "") < str(held["metadata"].get("creationTimestamp") or ""):
            return
    store[meta["name"]] = obj


def _uid(watch: NamespaceWatch, verdict: Verdict) -> str | None:
    """The uid of the object the verdict is about, as the watch saw it."""
    kind, _, name = (verdict.resource or "").partition("/")
    uid = ((watch.view.get(kind) or {}).get(name) or {}).get("metadata", {}).get("uid")
    return str(uid) if uid else None


def watch_release(
    kube: Kube,
    namespace: str,
    targets: list[ManifestWorkload],
    *,
    timeout: float,
    on_progress: Callable[[str], None] | None = None,
) -> Verdict:
    """Judge every target on each change until one fails, all complete, or ``timeout`` seconds pass; a
    failure (the timeout included) carries its diagnosis."""
    if not targets:
        return Verdict("complete", "no workloads in the release")
    since = time.time()
    watch = NamespaceWatch(kube, namespace, lists(kinds_to_watch(targets)) | EVENT_LISTS).start()
    tuning = Tuning(autoscaler=autoscaler_present(watch.api))
    deadline = time.monotonic() + timeout
    last_message = ""
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                verdict = release_verdict(targets, watch.view, watch.context(tuning, since))
                verdict = Verdict(
                    "failed",
                    f"rollout not complete after {timeout:.0f}s: {verdict.summary}",
                    pod=verdict.pod,
                    container=verdict.container,
                    reason="Timeout",
                    resource=verdict.resource,
                )
                return verdict.diagnosed(
                    diagnosis.collect(watch.api, namespace, verdict, since=since, uid=_uid(watch, verdict))
                )
            try:
                watch.poll(min(remaining, EVALUATE_EVERY))
            except WatchRefusedError as refused:
                raise refused.error from None
            if not watch.ready:
                continue
            verdict = release_verdict(targets, watch.view, watch.context(tuning, since))
            if verdict.message != last_message:
                last_message = verdict.message
                if on_progress is not None and not verdict.done:
                    on_progress(verdict.message)
            if verdict.state == "failed":
                return verdict.diagnosed(
                    diagnosis.collect(watch.api, namespace, verdict, since=since, uid=_uid(watch, verdict))
                )
            if verdict.done:
                return verdict
    finally:
        watch.stop()


class HookWatch:
    """The hook Jobs and Pods helm creates while it runs (``helm.sh/hook``; those present before are not).
    Started once helm has (``since``: when), so that importing the client and listing are not in its way."""

    def __init__(self, kube: Kube, namespace: str, *, since: float) -> None:
        self.since = since
        self.watch = NamespaceWatch(kube, namespace, lists(("Job", "Pod")) | EVENT_LISTS).start()
        self.tuning = Tuning(autoscaler=autoscaler_present(self.watch.api))
        self.active = True
        self.baseline: set[str] | None = None  # the uids of the first listing

    def _poll(self, timeout: float) -> None:
        try:
            self.watch.poll(timeout)
        except WatchRefusedError as refused:
            # helm still waits on its hooks (until its own timeout): watching them is a bonus, not a need
            log.warning("cannot watch the hooks (%s): helm waits for them", refused.message)
            self.active = False

    def failure(self, timeout: float) -> Verdict | None:
        """Wait up to ``timeout`` for changes; the first failed hook (with its diagnosis), else None."""
        if not self.active:
            time.sleep(timeout)
            return None
        self._poll(timeout)
        if not self.active or not self.watch.ready:
            return None
        if self.baseline is None:
            self.baseline = uids(self.watch.view)
        verdict = hook_failure(self.watch.view, self.baseline, self.watch.context(self.tuning, self.since))
        if verdict is None:
            return None
        uid = _uid(self.watch, verdict)
        return verdict.diagnosed(
            diagnosis.collect(self.watch.api, self.watch.namespace, verdict, since=self.since, uid=uid)
        )

    def stop(self) -> None:
        self.watch.stop()
