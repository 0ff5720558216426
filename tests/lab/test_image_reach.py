"""The image a deploy pins must reach the chart's workloads (issue 24, section 2): a chart whose keys the
``image_values`` mapping misses would run its own default image. Real helm 4, a real control plane with kwok nodes,
a real registry, moto S3 for the lock and the ledger.

The chart (tests/lab/charts/image-string) is a StatefulSet that takes its image as one string (default
``registry.example.invalid/store:2.7.0``), with a log-shipper sidecar and a migration hook on images of their own.
The default mapping sets ``image.repository``/``.digest``/``.tag``: helm turns ``image`` into a table, and the chart
renders it as ``map[...]`` (before this check, helm installed that and the pods ran it; only the verdict after the
rollout said something was wrong).
A chart that reads the image from another key renders its default instead; tests/unit/test_image_check.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.lab.deploy_world import DeployWorld
from tests.lab.world import ROOT

pytestmark = pytest.mark.lab

CHART = Path(__file__).resolve().parent / "charts" / "image-string"
SIDECAR = "StatefulSet/api-store: container log-shipper runs registry.example.invalid/log-shipper:1.4"


def store_config(w: DeployWorld, name: str, image_values: str | None = None) -> Path:
    """The app ``api`` on the store chart, with the default ``image_values`` or the ones given."""
    (w.repo / "values-dev.yaml").write_text(yaml.safe_dump({"api": {"replicas": 1}}))
    config = w.write_config(name)
    text = config.read_text().replace(str(ROOT / "charts" / "api"), str(CHART))
    if image_values is not None:
        text = text.replace('release = "api"\n', f'release = "api"\nimage_values = {image_values}\n')
    config.write_text(text)
    return config


def test_a_chart_whose_keys_the_mapping_misses_is_refused_before_anything_changes(deploy_world: DeployWorld) -> None:
    w = deploy_world
    digest = w.push("api", "v1", seed=2401)
    default = store_config(w, "default.toml")

    code, out, err = w.run("deploy", "dev", "--image-tag", "v1", config=default)
    assert code == 2, err
    assert f"api: the chart does not run the pinned image {digest}" in err
    # the default keys turn the chart's one string into a table: it renders that instead of an image
    rendered = f"map[digest:{digest} repository:{w.registry}/api tag:v1]"
    assert f"StatefulSet/api-store runs {rendered} (container store)" in err
    assert f"image.repository='{w.registry}/api', image.digest='{digest}', image.tag='v1'" in err  # the keys set
    assert "set apps.api.image_values" in err and '{ image = "{registry}/{repository}@{digest}" }' in err
    assert "Traceback" not in err
    [missing] = out["error"]["image_check"]["missing"]
    assert missing["workload"] == "StatefulSet/api-store" and missing["images"]["store"] == rendered
    # before anything: no helm release, no ledger entry (no intent either), the lock free, no pod
    assert w.helm("status", "api", check=False).returncode != 0
    assert w.revisions() == []
    assert w.ledger() == [] and w.intents() == []
    code, lock, _ = w.run("lock", "status", "dev", config=default)
    assert code == 0 and lock["locked"] is False
    assert w.pods() == []

    # `diff` renders too: it reports the problem instead of failing on it
    code, out, err = w.run("diff", "dev", "--digest", digest, config=default)
    assert code == 0, err
    problem = out["apps"][0]["problem"]
    assert f"StatefulSet/api-store runs map[digest:{digest} " in problem and "apps.api.image_values" in problem

    # the same chart with the mapping it needs deploys; the sidecar and the hook keep their own images
    string = store_config(w, "string.toml", '{ image = "{registry}/{repository}@{digest}" }')
    code, out, err = w.run("deploy", "dev", "--image-tag", "v1", config=string)
    assert code == 0, err
    [app] = out["apps"]
    assert (app["outcome"], app["revision"], app["image"]["digest"]) == ("succeeded", 1, digest)
    assert app["other_images"] == [SIDECAR]
    assert SIDECAR in err  # said while planning
    spec = yaml.safe_load(w.kubectl("get", "statefulset", "api-store", "-o", "yaml"))["spec"]["template"]["spec"]
    assert spec["containers"][0]["image"] == f"{w.registry}/api@{digest}"
    pods = [p for p in w.pods() if p["metadata"]["name"].startswith("api-store-")]
    assert pods and all(p["spec"]["containers"][0]["image"].endswith(f"@{digest}") for p in pods)
