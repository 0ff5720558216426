"""The rollout watch: two API watches (the Deployment, its pods) feed ``rollout.verdict_of`` until
it says complete or failed, or the time is up.

A watch that ends (server timeout, 410 Gone) is restarted from a fresh list. A watch refused
with 401/403 is not retried: the credential is wrong or expired, and saying "rollout not
complete" after the timeout would hide that.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from deployctl.helm import Kube
from deployctl.kube import api_client, errors, translate
from deployctl.rollout import REVISION_ANNOTATION, Verdict, deployment_state, pod_state, verdict_of

log = logging.getLogger(__name__)


@dataclass
class _RolloutView:
    """What the watch loop knows: the latest Deployment and the pods, by name."""

    deployment: dict[str, Any] | None = None
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    new_hash: str | None = None
    hash_for_revision: str = ""


def _selector(match_labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))


def _sanitize(api: Any, obj: Any) -> dict[str, Any]:
    result: dict[str, Any] = api.sanitize_for_serialization(obj)
    return result


def watch_rollout(  # noqa: PLR0915 (one loop with its two watch threads reads best in one place)
    kube: Kube,
    namespace: str,
    name: str,
    *,
    timeout: float,
    on_progress: Callable[[str], None] | None = None,
) -> Verdict:
    """Watch Deployment ``name`` until ``verdict_of`` says complete or failed, or ``timeout`` seconds pass."""
    from kubernetes import client as kclient
    from kubernetes.client.exceptions import ApiException

    api = api_client(kube)
    apps = kclient.AppsV1Api(api)
    core = kclient.CoreV1Api(api)
    try:
        first = _sanitize(api, apps.read_namespaced_deployment(name, namespace))
    except errors() as exc:
        raise translate(exc, kube, f"read deployment {name} in {namespace}") from None
    selector = _selector(first["spec"]["selector"].get("matchLabels") or {})
    events: queue.Queue[tuple[str, str, Any]] = queue.Queue()
    stop = threading.Event()

    def pump(kind: str, list_call: Callable[..., Any], **kwargs: Any) -> None:
        from kubernetes import watch

        while not stop.is_set():
            try:
                listed = list_call(namespace, **kwargs)
                events.put((kind, "SYNC", _sanitize(api, listed)))
                watcher = watch.Watch()
                for event in watcher.stream(
                    list_call,
                    namespace,
                    resource_version=listed.metadata.resource_version,
                    timeout_seconds=30,
                    _request_timeout=40,
                    **kwargs,
                ):
                    if stop.is_set():
                        watcher.stop()
                        break
                    events.put((kind, str(event["type"]), _sanitize(api, event["object"])))
            except ApiException as exc:
                if exc.status in (401, 403):
                    events.put((kind, "REFUSED", exc))  # retrying cannot fix a refused credential
                    return
                log.debug("%s watch ended: %s; restarting", kind, exc)
                if stop.wait(1.0):
                    return
            except Exception as exc:  # noqa: BLE001 (a broken watch is restarted; the loop's deadline bounds it)
                log.debug("%s watch ended: %s; restarting", kind, exc)
                if stop.wait(1.0):
                    return

    threads = [
        threading.Thread(
            target=pump,
            args=("deployment", apps.list_namespaced_deployment),
            kwargs={"field_selector": f"metadata.name={name}"},
            daemon=True,
        ),
        threading.Thread(
            target=pump, args=("pod", core.list_namespaced_pod), kwargs={"label_selector": selector}, daemon=True
        ),
    ]
    for thread in threads:
        thread.start()
    view = _RolloutView(deployment=first)
    deadline = time.monotonic() + timeout
    last_message = ""
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                verdict = _evaluate_view(view, apps, namespace, selector, api)
                return Verdict(
                    "failed", f"rollout not complete after {timeout:.0f}s: {verdict.message}", reason="Timeout"
                )
            try:
                item = events.get(timeout=min(remaining, 5.0))
            except queue.Empty:
                item = None  # no event for a while: re-evaluate anyway (e.g. the new ReplicaSet appeared)
            if item is not None:
                if item[1] == "REFUSED":
                    raise translate(item[2], kube, f"watch the {item[0]}s of {name}")
                _apply(view, *item)
            verdict = _evaluate_view(view, apps, namespace, selector, api)
            if verdict.message != last_message:
                last_message = verdict.message
                if on_progress is not None and not verdict.done:
                    on_progress(verdict.message)
            if verdict.done:
                return verdict
    finally:
        stop.set()


def _apply(view: _RolloutView, kind: str, event: str, obj: dict[str, Any]) -> None:
    if kind == "deployment":
        if event == "SYNC":
            items = obj.get("items") or []
            if items:
                view.deployment = items[0]
        elif event in ("ADDED", "MODIFIED"):
            view.deployment = obj
        return
    if event == "SYNC":
        view.pods = {p["metadata"]["name"]: p for p in obj.get("items") or ()}
    elif event == "DELETED":
        view.pods.pop(obj["metadata"]["name"], None)
    elif event in ("ADDED", "MODIFIED"):
        view.pods[obj["metadata"]["name"]] = obj


def _evaluate_view(view: _RolloutView, apps: Any, namespace: str, selector: str, api: Any) -> Verdict:
    assert view.deployment is not None  # noqa: S101 (set from the first read)
    state = deployment_state(view.deployment)
    if state.observed_generation >= state.generation and state.revision and view.hash_for_revision != state.revision:
        view.new_hash = _new_replicaset_hash(apps, namespace, selector, state.revision, api)
        if view.new_hash is not None:
            view.hash_for_revision = state.revision
    new_pods = [
        pod_state(p)
        for p in view.pods.values()
        if view.new_hash is not None and (p["metadata"].get("labels") or {}).get("pod-template-hash") == view.new_hash
    ]
    return verdict_of(state, new_pods)


def _new_replicaset_hash(apps: Any, namespace: str, selector: str, revision: str, api: Any) -> str | None:
    """The pod-template-hash of the ReplicaSet whose revision is the Deployment's (the new one)."""
    for rs in apps.list_namespaced_replica_set(namespace, label_selector=selector).items:
        doc = _sanitize(api, rs)
        meta = doc.get("metadata") or {}
        if (meta.get("annotations") or {}).get(REVISION_ANNOTATION) == revision:
            return (meta.get("labels") or {}).get("pod-template-hash")
    return None
