"""A release's manifest is parsed by libyaml's safe loader (issue 29: the pure-Python one was a tenth of a
promotion's CPU, per app), and what deployctl reads from it is exactly what the pure-Python safe loader gives."""

from __future__ import annotations

import pytest
import yaml

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


def test_the_c_loader_is_used_where_libyaml_is_installed() -> None:
    assert yaml.__with_libyaml__, "PyYAML's wheels carry libyaml"
    for module in (drift, image_check, unchanged):
        assert module._LOADER is yaml.CSafeLoader, module.__name__


@pytest.mark.parametrize("module", [drift, image_check, unchanged], ids=lambda m: m.__name__)
def test_what_is_read_is_what_the_pure_python_safe_loader_reads(
    module: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert list(yaml.load_all(MANIFEST, Loader=yaml.CSafeLoader)) == list(yaml.safe_load_all(MANIFEST))
    fast = (drift.documents(MANIFEST), image_check.workloads(MANIFEST), unchanged.objects(MANIFEST))
    targets = targets_in(MANIFEST)
    monkeypatch.setattr(module, "_LOADER", yaml.SafeLoader)
    assert (drift.documents(MANIFEST), image_check.workloads(MANIFEST), unchanged.objects(MANIFEST)) == fast
    assert targets_in(MANIFEST) == targets
    assert [t.ref for t in targets] == ["Deployment/api"] and targets[0].min_replicas == 3
