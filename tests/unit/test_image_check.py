"""Whether a rendered chart runs the image a rollout pins (``image_check``), as a table of manifests."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from deployctl.core.errors import UsageError
from deployctl.release import image_check

D = "sha256:" + "d" * 64
E = "sha256:" + "e" * 64
PINNED = f"r.example/api@{D}"
HOOK = {"helm.sh/hook": "pre-install,pre-upgrade"}


def pod(*containers: tuple[str, str], init: tuple[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": n, "image": i} for n, i in containers]}
    if init:
        spec["initContainers"] = [{"name": init[0], "image": init[1]}]
    return spec


def obj(kind: str, name: str, spec: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"annotations": annotations} if annotations else {})}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": kind, "metadata": meta, "spec": spec}
    if kind == "CronJob":
        body = {"jobTemplate": {"spec": {"template": {"spec": spec}}}}
        return {"apiVersion": "batch/v1", "kind": kind, "metadata": meta, "spec": body}
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": {"template": {"spec": spec}}}


def manifest(*docs: dict[str, Any]) -> str:
    return "".join(f"---\n# Source: chart/templates/{d['kind'].lower()}.yaml\n{yaml.safe_dump(d)}" for d in docs)


CONFIG = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"image": "x:1"}}

# (case, manifest, workloads missing the digest, containers on other images beside it)
CASES: list[tuple[str, str, list[str], list[str]]] = [
    ("a Deployment pinned at the digest", manifest(obj("Deployment", "api", pod(("api", PINNED)))), [], []),
    ("tag and digest", manifest(obj("Deployment", "api", pod(("api", f"r.example/api:v1@{D}")))), [], []),
    ("the chart's default image", manifest(obj("StatefulSet", "db", pod(("db", "r.example/db:2.7.0")))), ["StatefulSet/db"], []),
    ("another digest", manifest(obj("DaemonSet", "agent", pod(("agent", f"r.example/api@{E}")))), ["DaemonSet/agent"], []),
    ("the digest as a tag is not pinned", manifest(obj("Deployment", "api", pod(("api", f"r.example/api:{D[7:19]}")))), ["Deployment/api"], []),
    ("only an init container runs it", manifest(obj("Deployment", "api", pod(("api", "nginx:1"), init=("init", PINNED)))), ["Deployment/api"], []),
    ("a sidecar beside it", manifest(obj("Deployment", "api", pod(("api", PINNED), ("log", "fluent-bit:3")))), [], ["Deployment/api: container log runs fluent-bit:3"]),
    ("a hook runs its own image", manifest(obj("Job", "migrate", pod(("m", "migrate:1")), HOOK), obj("Deployment", "api", pod(("api", PINNED)))), [], []),
    ("a Job, a Pod and a CronJob", manifest(*(obj(k, k.lower(), pod(("c", PINNED))) for k in ("Job", "Pod", "CronJob"))), [], []),
    ("a CronJob's job template on the default", manifest(obj("CronJob", "nightly", pod(("c", "r.example/api:latest")))), ["CronJob/nightly"], []),
    ("one of two workloads misses", manifest(obj("Deployment", "api", pod(("api", PINNED))), obj("StatefulSet", "db", pod(("db", "db:2.7.0")))), ["StatefulSet/db"], []),
    ("no workload: nothing to check", manifest(CONFIG), [], []),
    ("an empty manifest", "", [], []),
]  # fmt: skip


@pytest.mark.parametrize(("case", "text", "missing", "others"), CASES, ids=[c[0] for c in CASES])
def test_check(case: str, text: str, missing: list[str], others: list[str]) -> None:
    found = image_check.check(text, D)
    assert [w.ref for w in found.missing] == missing, case
    assert list(found.sidecars()) == others, case
    assert found.ok is (not missing)


def test_a_refusal_names_the_app_the_workload_what_it_runs_and_the_keys_set() -> None:
    text = manifest(obj("StatefulSet", "fetcher-db", pod(("db", "r.example/db:2.7.0"), ("log", "fluent-bit:3"))))
    keys = {"image.repository": "r.example/fetcher", "image.digest": D, "image.tag": "abc123"}
    with pytest.raises(UsageError) as refused:
        image_check.require(text, "fetcher", D, keys)
    error = refused.value
    assert error.exit_code == 2
    assert error.message.startswith(f"fetcher: the chart does not run the pinned image {D}: ")
    assert (
        "StatefulSet/fetcher-db runs r.example/db:2.7.0 (container db), fluent-bit:3 (container log)" in error.message
    )
    assert f"apps.fetcher.image_values): image.repository='r.example/fetcher', image.digest='{D}'" in error.message
    assert "apps.fetcher.image_values" in str(error.hint)
    assert '{ image = "{registry}/{repository}@{digest}" }' in str(error.hint)
    assert error.details["image_check"] == {
        "ok": False,
        "missing": [
            {"workload": "StatefulSet/fetcher-db", "images": {"db": "r.example/db:2.7.0", "log": "fluent-bit:3"}}
        ],
        "other_images": [],
    }


def test_a_workload_that_runs_it_passes_and_says_its_sidecars() -> None:
    text = manifest(obj("Deployment", "api", pod(("api", PINNED), ("proxy", "envoy:1.30"))))
    found = image_check.require(text, "api", D, {"image.digest": D})
    assert found.sidecars() == ("Deployment/api: container proxy runs envoy:1.30",)
