"""The live-vs-chart comparison of ``deployctl diff`` (pure: rendered YAML and a fake GET)."""

from __future__ import annotations

from typing import Any

from deployctl.release.manifest_diff import compare, mask_secret, normalize, project

RENDERED = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: dev-api
  labels: {app: api}
spec:
  replicas: 1
  template:
    spec:
      containers:
        - name: api
          image: r/api@sha256:aaa
          resources: {limits: {cpu: "1"}}
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: dev-api}
data: {password: c2VjcmV0MQ==}
"""


def live_deployment(replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "api",
            "namespace": "dev-api",
            "labels": {"app": "api"},
            "uid": "u",
            "resourceVersion": "9",
            "generation": 4,
            "creationTimestamp": "t",
            "managedFields": [{"manager": "helm"}],
            "annotations": {"deployment.kubernetes.io/revision": "4", "meta.helm.sh/release-name": "api"},
        },
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": 600,  # an API default the chart does not set
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "api",
                            "image": "r/api@sha256:aaa",
                            "resources": {"limits": {"cpu": 1}},
                            "terminationMessagePath": "/dev/termination-log",
                        }
                    ]
                }
            },
        },
        "status": {"replicas": replicas},
    }


def fake_get(objects: dict[tuple[str, str], dict[str, Any]]) -> Any:
    return lambda _api_version, kind, name, _namespace: objects.get((kind, name))


def test_no_drift_means_unchanged_despite_defaults_and_server_fields() -> None:
    live = {("Deployment", "api"): live_deployment(1), ("Secret", "creds"): {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "creds", "namespace": "dev-api"}, "data": {"password": "c2VjcmV0MQ=="}}}  # fmt: skip
    result = compare(RENDERED, "", "dev-api", fake_get(live))
    assert [(o.ref, o.change) for o in result] == [("Deployment/api", "unchanged"), ("Secret/creds", "unchanged")]


def test_scaled_by_hand_shows_as_changed() -> None:
    live = {("Deployment", "api"): live_deployment(3)}
    result = {o.ref: o for o in compare(RENDERED, "", "dev-api", fake_get(live))}
    assert result["Deployment/api"].change == "changed"
    assert "-  replicas: 3" in result["Deployment/api"].diff
    assert "+  replicas: 1" in result["Deployment/api"].diff
    assert result["Secret/creds"].change == "added"


def test_secret_values_never_appear() -> None:
    live = {("Secret", "creds"): {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
            "data": {"password": "b2xkc2VjcmV0"}}}  # fmt: skip
    result = {o.ref: o for o in compare(RENDERED, "", "dev-api", fake_get(live))}
    text = "\n".join(result["Secret/creds"].diff)
    assert result["Secret/creds"].change == "changed"
    assert "c2VjcmV0MQ==" not in text
    assert "b2xkc2VjcmV0" not in text
    assert "***" in text
    assert mask_secret({"kind": "ConfigMap", "data": {"a": "b"}}) == {"kind": "ConfigMap", "data": {"a": "b"}}


def test_removed_objects_from_the_installed_release() -> None:
    installed = RENDERED + "\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: old}\n"
    live = {("ConfigMap", "old"): {"kind": "ConfigMap"}}
    refs = {o.ref: o.change for o in compare(RENDERED, installed, "dev-api", fake_get(live))}
    assert refs["ConfigMap/old"] == "removed"


def test_normalize_and_project() -> None:
    n = normalize(live_deployment(1))
    assert "status" not in n
    assert set(n["metadata"]) == {"name", "namespace", "labels", "annotations"}
    assert n["metadata"]["annotations"] == {"meta.helm.sh/release-name": "api"}
    assert project({"a": 1, "b": 2, "c": [{"x": 1, "y": 2}]}, {"a": 0, "c": [{"x": 0}]}) == {"a": 1, "c": [{"x": 1}]}
    # lists of different length are kept whole (an added or removed element must show)
    assert project({"c": [1, 2, 3]}, {"c": [1]}) == {"c": [1, 2, 3]}


def test_hooks_are_not_drift() -> None:
    """A migration Job helm deletes after it succeeded is not missing from the cluster: hooks are left out."""
    hook = (
        "\n---\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: worker-migrate\n  annotations:\n"
        "    helm.sh/hook: pre-upgrade\n    helm.sh/hook-delete-policy: hook-succeeded\nspec: {}\n"
    )
    live = {("Deployment", "api"): live_deployment(1)}
    refs = {o.ref for o in compare(RENDERED + hook, RENDERED + hook, "dev-api", fake_get(live))}
    assert "Job/worker-migrate" not in refs


EMPTY_CONFIG = """
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: dev-api}
data: {}
"""


def test_an_empty_map_the_server_omits_is_no_drift() -> None:
    """The API server omits a ConfigMap's empty ``data``: a chart that renders ``data: {}`` has not drifted
    (seen with two clusters: every diff of a chart with an empty ConfigMap showed it)."""
    omitted = {("ConfigMap", "settings"): {"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "settings", "namespace": "dev-api", "uid": "u"}}}  # fmt: skip
    assert [o.change for o in compare(EMPTY_CONFIG, "", "dev-api", fake_get(omitted))] == ["unchanged"]
    other = {("ConfigMap", "settings"): {**omitted[("ConfigMap", "settings")], "immutable": True}}
    assert [o.change for o in compare(EMPTY_CONFIG.replace("data: {}", "data: {}\nimmutable: false"), "",
                                      "dev-api", fake_get(other))] == ["changed"]  # fmt: skip
