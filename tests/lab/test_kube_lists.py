"""The API client's costs cut in issue 29: ``kube.list_json`` (a list as the API server sends it, without the
client's models) gives deployctl the same facts as the models turned back into dicts did (what the rollout watch
and the release snapshot read); one client per kubeconfig in a process; the autoscaler asked about once."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from deployctl.adapters.helm_argv import Kube
from deployctl.adapters.kube.client import api_client, autoscaler_present, list_call, list_json
from deployctl.rollout.kinds import lists
from deployctl.rollout.kinds.job import job_state
from deployctl.rollout.pods import pod_state
from deployctl.sandbox.lab import Lab

CALLS = lists(("Pod", "Job"))

pytestmark = pytest.mark.lab


def test_a_raw_list_says_what_the_models_said(lab: Lab) -> None:
    namespace = f"lists-{int(time.time())}"
    assert lab.kube("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})[0] == 201
    container = {"name": "c", "image": "registry.invalid/lists@sha256:" + "a" * 64}
    pod = {"metadata": {"name": "p", "labels": {"a": "b"}}, "spec": {"containers": [container]}}
    job = {
        "metadata": {"name": "j"},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [container]}}},
    }
    assert lab.kube("POST", f"/api/v1/namespaces/{namespace}/pods", pod)[0] == 201
    assert lab.kube("POST", f"/apis/batch/v1/namespaces/{namespace}/jobs", job)[0] == 201
    api = api_client(Kube(lab.kubeconfig, lab.context))
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # kwok schedules the pods and reports their containers
            raw = list_json(api, CALLS["Pod"], namespace)
            if len(raw["items"]) == 2 and all((p.get("status") or {}).get("conditions") for p in raw["items"]):
                break
            time.sleep(0.5)
        raw = list_json(api, CALLS["Pod"], namespace)
        # the same snapshot (kwok may still be changing the pods): the models' list at the raw list's version
        version = raw["metadata"]["resourceVersion"]
        at_version = {"resource_version": version, "resource_version_match": "Exact"}
        models = api.sanitize_for_serialization(list_call(api, CALLS["Pod"])(namespace, **at_version))
        assert raw["metadata"]["resourceVersion"]
        assert len(raw["items"]) == 2
        assert [pod_state(p) for p in raw["items"]] == [pod_state(p) for p in models["items"]]
        raw_jobs = list_json(api, CALLS["Job"], namespace)
        at_version = {"resource_version": raw_jobs["metadata"]["resourceVersion"], "resource_version_match": "Exact"}
        model_jobs = api.sanitize_for_serialization(list_call(api, CALLS["Job"])(namespace, **at_version))["items"]
        raw_jobs = raw_jobs["items"]
        assert [job_state(j) for j in raw_jobs] == [job_state(j) for j in model_jobs]
    finally:
        lab.kube("DELETE", f"/api/v1/namespaces/{namespace}")


def test_one_client_per_kubeconfig_shared_by_threads_and_a_rewritten_kubeconfig_gets_a_new_one(
    lab: Lab, tmp_path: Path
) -> None:
    """Building a client runs the exec credential plugin on EKS (a Python process): the apps' watches share one."""
    copy = tmp_path / "kubeconfig"
    copy.write_bytes(lab.kubeconfig.read_bytes())
    kube = Kube(copy, lab.context)
    with ThreadPoolExecutor(4) as pool:
        clients = list(pool.map(lambda _: api_client(kube), range(8)))
    assert all(c is clients[0] for c in clients)
    assert list_json(clients[0], CALLS["Pod"], "default")["kind"] == "PodList"
    copy.write_bytes(copy.read_bytes() + b"\n")  # rewritten (e.g. by `deployctl sandbox env`)
    assert api_client(kube) is not clients[0]


def test_the_autoscaler_answer_is_asked_once_per_cluster(lab: Lab, tmp_path: Path) -> None:
    copy = tmp_path / "kubeconfig"
    copy.write_bytes(lab.kubeconfig.read_bytes())
    api = api_client(Kube(copy, lab.context))
    calls: list[str] = []
    send = api.call_api

    def counted(path: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(path)
        return send(path, *args, **kwargs)

    api.call_api = counted
    assert autoscaler_present(api) is False  # the lab has neither Karpenter nor the cluster-autoscaler
    asked = len(calls)
    assert asked >= 2
    assert autoscaler_present(api) is False
    assert len(calls) == asked, "the second watch of the run asks no more"


def test_the_watches_receive_every_event_but_the_routine_ones(lab: Lab) -> None:
    """The Event list and watch carry the field selector (``watch.SELECTED``) to the real API server: the events a
    verdict reads arrive, listed and streamed, whatever their type; the routine ones stay on the server."""
    from deployctl.rollout.watch import EVENT_LISTS, NamespaceWatch

    namespace = f"events-{int(time.time())}"
    assert lab.kube("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})[0] == 201

    def event(name: str, reason: str, kind: str = "Normal") -> None:
        body = {
            "metadata": {"name": name},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": namespace},
            "reason": reason,
            "message": reason,
            "type": kind,
        }
        assert lab.kube("POST", f"/api/v1/namespaces/{namespace}/events", body)[0] == 201

    event("a", "Scheduled")
    event("b", "Pulled")
    event("c", "TriggeredScaleUp")  # a Normal event the unschedulable verdict reads
    event("d", "FailedCreate", "Warning")
    watch = NamespaceWatch(Kube(lab.kubeconfig, lab.context), namespace, EVENT_LISTS).start()
    try:
        deadline = time.monotonic() + 20
        while "Event" not in watch.synced and time.monotonic() < deadline:
            watch.poll(0.5)
        assert sorted(e.reason for e in watch.events.values()) == ["FailedCreate", "TriggeredScaleUp"], "listed"
        event("e", "Started")
        event("f", "NotTriggerScaleUp")
        event("g", "BackOff", "Warning")
        while len(watch.events) < 4 and time.monotonic() < deadline:
            watch.poll(0.5)
        watch.poll(1.0)  # the routine one, had it been sent, arrived before the last
        reasons = sorted(e.reason for e in watch.events.values())
        assert reasons == ["BackOff", "FailedCreate", "NotTriggerScaleUp", "TriggeredScaleUp"], "streamed"
    finally:
        watch.stop()
        lab.kube("DELETE", f"/api/v1/namespaces/{namespace}")
