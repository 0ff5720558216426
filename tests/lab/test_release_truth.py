"""What deployctl says about a release is what the cluster shows (issue 24), against the lab: real helm 4, a real
control plane with kwok nodes, real images in a real registry, moto S3 for the lock and the ledger.

- the fix deployed right after a failed hook is judged by its own pods, not the failed hook's (by owner uid);
- a chart written by hand, without the recommended labels, is judged from helm's manifest;
- after a failed StatefulSet rollout the hint says what serves, read from the pods;
- ``status`` after a failed hook shows the failed revision, its hook and what serves now;
- a Deployment behind an HPA is judged at the HPA's minReplicas, and ``status`` is healthy right after.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.lab.deploy_world import World, deploy, measure, migration, pod_images, use_chart

pytestmark = pytest.mark.lab


@pytest.fixture
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    w: World = request.getfixturevalue("deploy_world")
    yield w
    w.kubectl("delete", "namespace", w.namespace, "--wait=false")


def test_the_fix_after_a_failed_hook_is_judged_by_its_own_pods_ten_times_in_a_row(world: World) -> None:
    """Helm re-creates Job/api-migrate under the same name while the failed Job's crash-looping pods still
    terminate: the fix, deployed at once (no sleep), must never be judged by them."""
    good = use_chart(world, "statefulset", {"replicas": 1, **migration(world, seed=7000)}, "statefulset")
    world.push("statefulset", "v0", seed=7001)
    code, _, err, _ = deploy(world, good, "v0")
    assert code == 0, err
    for round_ in range(10):
        broken = migration(world, 7100 + round_, "migrate-crashloop")
        config = use_chart(world, "statefulset", {"replicas": 1, **broken}, "statefulset")
        world.push("statefulset", f"b{round_}", seed=7200 + round_)
        code, out, err, elapsed = deploy(world, config, f"b{round_}")
        assert code == 1, err
        assert out["error"]["resource"] == "Job/api-migrate", out["error"]

        fixed = use_chart(world, "statefulset", {"replicas": 1, **migration(world, 7300 + round_)}, "statefulset")
        digest = world.push("statefulset", f"f{round_}", seed=7400 + round_)
        code, out, err, fixed_in = deploy(world, fixed, f"f{round_}")
        measure(f"round {round_}: failed hook in {elapsed:.1f}s, its fix deployed in {fixed_in:.1f}s")
        assert code == 0, f"round {round_}: the fix was judged by the failed hook's pods:\n{err}"
        [last, *_] = world.ledger()
        assert (last.digest, last.outcome, last.verdict) == (digest, "succeeded", "healthy"), round_
        assert "CrashLoopBackOff" not in last.message


def test_a_chart_without_the_recommended_labels_is_found_from_the_manifest_and_verified(world: World) -> None:
    """The issue: a healthy StatefulSet of a hand-written chart was FAILED 'the release has no workloads to
    verify', because deployctl looked for app.kubernetes.io/instance labels."""
    config = use_chart(world, "plainlabels", {"replicas": 2}, "plain")
    digest = world.push("plain", "v1", seed=7501)
    code, out, err, _ = deploy(world, config, "v1")
    assert code == 0, err
    [app] = out["apps"]
    assert f"statefulset api-plain: 2/2 ready pods run {digest}" in app["message"], app["message"]
    code, status, err = world.run("status", "dev", config=config)
    assert code == 0, err
    [workload] = status["apps"][0]["workloads"]
    assert (workload["kind"], workload["name"], workload["desired_digest"]) == ("StatefulSet", "api-plain", digest)
    assert workload["rollout"] == "complete" and status["apps"][0]["healthy"] is True


def test_the_hint_after_a_failed_statefulset_says_what_actually_serves(world: World) -> None:
    """A StatefulSet of one pod replaces that pod: after its crash nothing of the previous digest serves, and the
    hint must not claim "the previous pods keep serving"."""
    values = {"replicas": 1, "migration": {"enabled": False}}
    config = use_chart(world, "statefulset", values, "statefulset")
    world.push("statefulset", "v1", seed=7601)
    code, _, err, _ = deploy(world, config, "v1")
    assert code == 0, err
    config = use_chart(world, "statefulset", values, "statefulset-crashloop")
    crashing = world.push("statefulset-crashloop", "v2", seed=7602)
    code, out, err, _ = deploy(world, config, "v2")
    assert code == 1, err
    hint = out["error"]["hint"]
    assert "previous pods keep serving" not in hint
    assert "statefulset api-db: no pod serves (none is ready)" in hint, hint
    assert crashing in json.dumps(out["error"])


def test_status_after_a_failed_hook_shows_the_failed_revision_its_hook_and_what_serves(world: World) -> None:
    config = use_chart(world, "statefulset", {"replicas": 1, **migration(world, seed=7701)}, "statefulset")
    serving = world.push("statefulset", "v1", seed=7702)
    code, _, err, _ = deploy(world, config, "v1")
    assert code == 0, err
    broken = use_chart(
        world, "statefulset", {"replicas": 1, **migration(world, 7703, "migrate-crashloop")}, "statefulset"
    )
    failed = world.push("statefulset", "v2", seed=7704)
    code, _, err, _ = deploy(world, broken, "v2")
    assert code == 1, err
    code, out, err = world.run("status", "dev", config=broken)
    assert code == 1, err
    [app] = out["apps"]
    assert app["digest"] == failed, "status shows what the failed revision asks for, not the previous digest"
    assert app["helm_status"] != "deployed" or app["failed_hooks"], app
    assert any("Job/api-migrate" in hook for hook in app["failed_hooks"]), app
    [workload] = app["workloads"]
    assert workload["serving"] == [{"digest": serving, "pods": 1}], "the previous pod still serves"
    assert workload["ready"] == 0 and app["healthy"] is False
    world.capsys.readouterr()
    from deployctl.cli.main import main

    assert main(["--config", str(broken), "status", "dev"]) == 1
    text = world.capsys.readouterr().out
    assert "hook    hook Job/api-migrate failed" in text and f"serving now: 1 pod(s) of {serving}" in text, text


def test_a_deployment_behind_an_hpa_is_judged_at_its_min_replicas(world: World) -> None:
    """The demo's prod api (HPA minReplicas 3, no replicas in its Deployment) was judged healthy at 1 replica,
    before the HPA scaled it, and ``status`` right after the promote called the scale-up a failing rollout."""
    section = yaml.safe_load((Path(__file__).resolve().parents[2] / "values-prod.yaml").read_text())["api"]
    values = {"autoscaling": section["autoscaling"]}
    config = use_chart(world, "deployment", values, "api")
    digest = world.push("api", "v1", seed=7801)
    code, out, err, elapsed = deploy(world, config, "v1")
    measure(f"deployment behind an HPA (minReplicas 3) judged in {elapsed:.1f}s")
    assert code == 0, err
    [app] = out["apps"]
    assert f"deployment api: 3 ready pods run {digest}" in app["message"], app["message"]
    assert "HPA minReplicas 3" in app["message"]
    assert sum(1 for image in pod_images(world).values() if image.endswith(digest)) >= 3
    code, status, err = world.run("status", "dev", config=config)
    assert code == 0, (status, err)
