"""``kube.list_json`` (issue 29): a list as the API server sends it, without the client's models, gives deployctl
the same facts as the models turned back into dicts did (what the rollout watch and the release snapshot read)."""

from __future__ import annotations

import time

import pytest

from deployctl.helm import Kube
from deployctl.kinds import job_state
from deployctl.kube import api_client, list_call, list_json
from deployctl.rollout import pod_state
from deployctl.sandbox.lab import Lab

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
            raw = list_json(api, "Pod", namespace)
            if len(raw["items"]) == 2 and all((p.get("status") or {}).get("conditions") for p in raw["items"]):
                break
            time.sleep(0.5)
        raw = list_json(api, "Pod", namespace)
        models = api.sanitize_for_serialization(list_call(api, "Pod")(namespace))
        assert raw["metadata"]["resourceVersion"]
        assert len(raw["items"]) == 2
        assert [pod_state(p) for p in raw["items"]] == [pod_state(p) for p in models["items"]]
        raw_jobs = list_json(api, "Job", namespace)["items"]
        model_jobs = api.sanitize_for_serialization(list_call(api, "Job")(namespace))["items"]
        assert [job_state(j) for j in raw_jobs] == [job_state(j) for j in model_jobs]
    finally:
        lab.kube("DELETE", f"/api/v1/namespaces/{namespace}")
