"""A release's manifest is parsed by libyaml's safe loader (issue 29: the pure-Python one was a tenth of a
promotion's CPU, per app), and what deployctl reads from it is exactly what the pure-Python safe loader gives."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import yaml

from deployctl.core import manifests
from deployctl.release import image_check
from deployctl.release import manifest_diff as drift
from deployctl.rollout import unchanged
from deployctl.rollout.tracking import targets_in

# What charts render: several documents (empty ones too), comments, anchors, block scalars, quoted and unquoted
# scalars YAML 1.1 reads as booleans, numbers or dates, a hook, an HPA, workloads with sidecars.
MANIFEST = """\
---
# Source: api/templates/configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: api-config
  labels: &labels
    app.kubernetes.io/name: api
    app.kubernetes.io/instance: api
  annotations: *labels
data:
  FLAG: "on"
  ENABLED: yes
  RATIO: 0.50
  SINCE: 2026-12-07
  OCTAL: 0755
  SCRIPT: |
    #!/bin/sh
    echo "hello: world"
---
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  annotations:
    deployctl.dev/image-digest: "sha256:aaaa"
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: api
          image: "r.example/api@sha256:aaaa"
          args: ["--port", 8080, ~, null]
        - {name: proxy, image: 'r.example/proxy:1.2'}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: api}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: api}
  minReplicas: 3
---
apiVersion: batch/v1
kind: Job
metadata:
  name: api-migrate
  annotations:
    helm.sh/hook: pre-upgrade
spec:
  template:
    spec:
      containers:
        - name: migrate
          image: r.example/migrate@sha256:bbbb
"""


READERS = {
    "release.manifest_diff.documents": drift.documents,
    "release.image_check.workloads": image_check.workloads,
    "rollout.unchanged.objects": unchanged.objects,
    "rollout.tracking.targets_in": targets_in,
}


def test_the_c_loader_is_used_where_libyaml_is_installed() -> None:
    assert yaml.__with_libyaml__, "PyYAML's wheels carry libyaml"
    assert manifests.LOADER is yaml.CSafeLoader


@pytest.mark.parametrize("read", READERS.values(), ids=READERS.keys())
def test_every_reader_parses_with_the_one_loader(
    read: Callable[[str], object], monkeypatch: pytest.MonkeyPatch
) -> None:
    used = []

    class Counting(yaml.SafeLoader):
        def __init__(self, stream: str) -> None:
            used.append(stream)
            super().__init__(stream)

    monkeypatch.setattr(manifests, "LOADER", Counting)
    read(MANIFEST)
    assert used == [MANIFEST]


def test_what_is_read_is_what_the_pure_python_safe_loader_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    assert list(yaml.load_all(MANIFEST, Loader=yaml.CSafeLoader)) == list(yaml.safe_load_all(MANIFEST))
    fast = [read(MANIFEST) for read in READERS.values()]
    monkeypatch.setattr(manifests, "LOADER", yaml.SafeLoader)
    assert [read(MANIFEST) for read in READERS.values()] == fast
    targets = targets_in(MANIFEST)
    assert [t.ref for t in targets] == ["Deployment/api"] and targets[0].min_replicas == 3
