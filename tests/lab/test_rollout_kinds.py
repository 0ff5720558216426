"""``deployctl deploy`` of every workload kind against the lab (issue 15): real helm 4, a real control plane
with kwok nodes, real images in a real registry, moto S3 for the lock and the ledger.

Each failure class is made real in the cluster, never faked: the image's repository name carries a kwok
marker (``crashloop``, ``oomkilled``, ``does-not-exist``, ``never-ready``, ``exits-nonzero``: see
deployctl/sandbox/control_plane.py), or the values ask for what no node has (a node selector, 900 CPUs).
The charts are tests/lab/charts/*; the Deployment is the repository's own chart. Budgets are generous
(a loaded 2-core machine); the measured figures are printed (``pytest -s``) and go to ``make bench``.
"""

from __future__ import annotations

import json
import shutil
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deployctl.sandbox.lab import Lab
from tests.lab.deploy_world import CHARTS, DeployWorld, deploy, measure, migration, pod_images, use_chart

pytestmark = pytest.mark.lab

BUDGET = 30.0  # seconds from `deployctl deploy` to its verdict; helm --wait: 120 s to 300 s, or never
IMPOSSIBLE_NODE = {"nodeSelector": {"deployctl.dev/no-such-node": "true"}}
IMPOSSIBLE_CPU = {"resources": {"requests": {"cpu": "900"}}}
FAST_READINESS = {
    "startup": {"path": "/healthz", "periodSeconds": 5, "timeoutSeconds": 2, "failureThreshold": 30},
    "liveness": {"path": "/healthz", "periodSeconds": 10, "timeoutSeconds": 2, "failureThreshold": 3},
    "readiness": {
        "path": "/readyz",
        "periodSeconds": 1,
        "timeoutSeconds": 2,
        "failureThreshold": 2,
        "successThreshold": 1,
    },
}
NAMES = {"statefulset": "api-db", "daemonset": "api-agent", "job": "api-batch-r1", "pod": "api-single-r1"}
CONTAINERS = {"statefulset": "db", "daemonset": "agent", "job": "batch", "pod": "single", "deployment": "api"}
KINDS = {"statefulset": "StatefulSet", "daemonset": "DaemonSet", "job": "Job", "pod": "Pod", "deployment": "Deployment"}


@pytest.fixture
def world(request: pytest.FixtureRequest) -> Iterator[DeployWorld]:
    """test_deploy's DeployWorld (a repository whose dev is a namespace of its own); the namespace is deleted after,
    so the lab's nodes do not fill up with the DaemonSets and failing pods of earlier cases."""
    w: DeployWorld = request.getfixturevalue("deploy_world")
    yield w
    w.kubectl("delete", "namespace", w.namespace, "--wait=false")


# --------------------------------------------------------------------------- each kind x each failure class

# (id, chart, kwok marker in the repository name or "", values, reasons accepted)
FAILURES: list[tuple[str, str, str, dict[str, Any], set[str]]] = [
    ("statefulset-crash", "statefulset", "crashloop", {}, {"CrashLoopBackOff"}),
    ("statefulset-oom", "statefulset", "oomkilled", {}, {"OOMKilled"}),
    ("statefulset-pull", "statefulset", "does-not-exist", {}, {"ErrImagePull", "ImagePullBackOff"}),
    ("statefulset-never-ready", "statefulset", "never-ready", {}, {"NotReady"}),
    ("statefulset-unschedulable", "statefulset", "", IMPOSSIBLE_NODE, {"Unschedulable"}),
    ("daemonset-crash", "daemonset", "crashloop", {}, {"CrashLoopBackOff"}),
    ("daemonset-pull", "daemonset", "does-not-exist", {}, {"ErrImagePull", "ImagePullBackOff"}),
    ("daemonset-never-ready", "daemonset", "never-ready", {}, {"NotReady"}),
    ("daemonset-unschedulable", "daemonset", "", IMPOSSIBLE_CPU, {"Unschedulable"}),
    ("job-fails", "job", "exits-nonzero", {}, {"BackoffLimitExceeded"}),
    ("job-retries-beyond-the-budget", "job", "exits-nonzero", {"backoffLimit": 6}, {"Error"}),
    ("job-crash", "job", "crashloop", {}, {"CrashLoopBackOff"}),
    ("job-pull", "job", "does-not-exist", {}, {"ErrImagePull", "ImagePullBackOff"}),
    ("job-unschedulable", "job", "", IMPOSSIBLE_NODE, {"Unschedulable"}),
    ("job-deadline", "job", "never-ready", {"activeDeadlineSeconds": 3}, {"DeadlineExceeded"}),
    ("pod-crash", "pod", "crashloop", {}, {"CrashLoopBackOff"}),
    ("pod-pull", "pod", "does-not-exist", {}, {"ErrImagePull", "ImagePullBackOff"}),
    ("pod-never-ready", "pod", "never-ready", {}, {"NotReady"}),
    ("pod-unschedulable", "pod", "", IMPOSSIBLE_NODE, {"Unschedulable"}),
    ("pod-exits", "pod", "exits-nonzero", {"restartPolicy": "Never"}, {"Error"}),
    ("deployment-oom", "deployment", "oomkilled", {}, {"OOMKilled"}),
    ("deployment-unschedulable", "deployment", "", IMPOSSIBLE_NODE, {"Unschedulable"}),
    # the chart's startup and readiness probes, readiness every second: kubedog's grace is 5.5 s once started
    ("deployment-never-ready", "deployment", "never-ready", {"probes": FAST_READINESS}, {"NotReady"}),
    (
        "deployment-progress-deadline",
        "deployment",
        "never-ready",
        {"progressDeadlineSeconds": 2, "podAnnotations": {"deployctl.dev/readiness-grace-seconds": "600"}},
        {"ProgressDeadlineExceeded"},
    ),
]


@pytest.mark.parametrize(("case", "chart", "marker", "values", "reasons"), FAILURES, ids=[f[0] for f in FAILURES])
def test_a_failing_workload_fails_the_deploy_in_seconds_naming_it(
    world: DeployWorld, case: str, chart: str, marker: str, values: dict[str, Any], reasons: set[str]
) -> None:
    repository = f"{chart}-{marker}" if marker else chart
    seed = zlib.crc32(case.encode()) % 10_000
    if chart == "statefulset":
        values = {**values, **migration(world, seed=seed + 20_000)}
    config = use_chart(world, chart, values, repository)
    digest = world.push(repository, "bad", seed=seed + 10_000)

    code, out, err, elapsed = deploy(world, config, "bad")
    measure(f"{case}: exit {code} in {elapsed:.1f}s ({out['error'].get('reason') if out else '?'})")
    assert code == 1, err
    assert elapsed <= BUDGET, f"{case}: verdict after {elapsed:.1f}s"
    error = out["error"]
    assert error["reason"] in reasons, error
    kind = KINDS[chart]
    assert error["resource"].startswith(f"{kind}/"), error
    if chart in NAMES:
        assert error["resource"] == f"{kind}/{NAMES[chart]}"
    if error["reason"] not in ("Unschedulable", "DeadlineExceeded", "ProgressDeadlineExceeded"):
        assert error["container"] == CONTAINERS[chart], error
    if error["pod"]:
        assert error["pod"] in err
    assert error["reason"] in err
    # the diagnosis: events of the resource and its pod; the lab's pods have no logs, and it says so
    assert error["diagnosis"], error
    if error["pod"] and error["reason"] not in ("Unschedulable",):
        assert any("no logs available" in line for line in error["diagnosis"]), error["diagnosis"]
    if error["reason"] == "Unschedulable":
        assert "0/3 nodes are available" in err  # the scheduler's own words
    [last, *_] = world.ledger()
    assert (last.action, last.outcome, last.verdict, last.digest) == ("deploy", "failed", "failed", digest)
    code, out, _ = world.run("lock", "status", "dev")
    assert out["locked"] is False


def test_status_names_a_failed_statefulset_rollout(world: DeployWorld) -> None:
    """The issue's ``status dev`` said ``0/0 pods ready, digest ?`` (exit 0) for a crash-looping StatefulSet."""
    config = use_chart(world, "statefulset", migration(world, seed=3001), "statefulset-crashloop")
    digest = world.push("statefulset-crashloop", "bad", seed=3002)
    code, _, err, _ = deploy(world, config, "bad")
    assert code == 1, err
    code, out, err = world.run("status", "dev", config=config)
    assert code == 1, err
    [app] = out["apps"]
    [workload] = app["workloads"]
    assert (workload["kind"], workload["name"], workload["desired_digest"]) == ("StatefulSet", "api-db", digest)
    assert (workload["rollout"], workload["reason"]) == ("failed", "CrashLoopBackOff")
    assert app["healthy"] is False


# --------------------------------------------------------------------------- hooks


def test_a_hook_that_cannot_pull_fails_in_seconds_and_the_next_deploy_recovers(world: DeployWorld) -> None:
    good = use_chart(world, "statefulset", migration(world, seed=4001), "statefulset")
    world.push("statefulset", "v1", seed=4002)
    code, out, err, _ = deploy(world, good, "v1")
    assert code == 0, err

    broken = use_chart(world, "statefulset", migration(world, 4003, "migrate-does-not-exist"), "statefulset")
    world.push("statefulset", "v2", seed=4004)
    code, out, err, elapsed = deploy(world, broken, "v2")
    measure(f"pre-upgrade hook with an image that does not exist: exit {code} in {elapsed:.1f}s")
    assert code == 1, err
    assert elapsed <= BUDGET, f"helm would wait 300 s; deployctl took {elapsed:.1f}s"
    error = out["error"]
    assert error["resource"] == "Job/api-migrate" and error["container"] == "migrate", error
    assert error["reason"] in ("ErrImagePull", "ImagePullBackOff") and error["pod"].startswith("api-migrate-")
    assert "hook Job/api-migrate" in err and "helm upgrade of api stopped" in err
    assert "context canceled" not in err and "--set-string" not in err  # not helm's argv and timeout
    assert not _helm_children(), "helm was stopped"
    [last, *_] = world.ledger()
    assert (last.outcome, last.verdict) == ("failed", "failed")
    code, lock, _ = world.run("lock", "status", "dev")
    assert lock["locked"] is False
    left = json.loads(world.helm("list", "-o", "json").stdout)[0]["status"]
    measure(f"release after the stopped hook: {left}")
    assert left in ("failed", "pending-upgrade")

    fixed = use_chart(world, "statefulset", migration(world, seed=4005), "statefulset")
    digest = world.push("statefulset", "v3", seed=4006)
    code, out, err, _ = deploy(world, fixed, "v3")
    assert code == 0, err
    if left == "pending-upgrade":
        assert out["apps"][0]["recovered"], "a pending release must be recovered"
    assert json.loads(world.helm("list", "-o", "json").stdout)[0]["status"] == "deployed"
    assert set(pod_images(world).values()) >= {f"{world.registry}/statefulset@{digest}"}


def test_a_failing_hook_job_is_named_with_its_exit(world: DeployWorld) -> None:
    config = use_chart(world, "statefulset", migration(world, 4101, "migrate-exits-nonzero"), "statefulset")
    world.push("statefulset", "v1", seed=4102)
    code, out, err, elapsed = deploy(world, config, "v1")
    measure(f"pre-install hook that exits 1: exit {code} in {elapsed:.1f}s")
    assert code == 1, err
    assert elapsed <= BUDGET
    error = out["error"]
    assert (error["resource"], error["reason"], error["container"]) == (
        "Job/api-migrate",
        "BackoffLimitExceeded",
        "migrate",
    )
    assert "Error (code 1)" in err


def _helm_children() -> list[int]:
    """helm processes started by this test process (none may outlive a stopped deploy)."""
    import os

    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid() and "upgrade" in cmdline:
                found.append(int(entry.name))
    return found


# --------------------------------------------------------------------------- success: the proof per kind


@pytest.mark.parametrize("chart", ["statefulset", "daemonset", "job", "pod"])
def test_a_healthy_rollout_proves_its_pods_run_the_digest(world: DeployWorld, chart: str) -> None:
    values = migration(world, seed=5001) if chart == "statefulset" else {}
    config = use_chart(world, chart, values, chart)
    digest = world.push(chart, "good", seed=5002)
    code, out, err, elapsed = deploy(world, config, "good")
    measure(f"{chart} healthy rollout: {elapsed:.1f}s")
    assert code == 0, err
    pods = {"statefulset": 2, "daemonset": 3, "job": 1, "pod": 1}[chart]
    noun = "completed" if chart == "job" else "ready"
    proof = (
        f"{KINDS[chart].lower()} {NAMES[chart]}: {pods}/{pods} {noun} pods run {digest} (imageID confirmed on {pods})"
    )
    [app] = out["apps"]
    assert proof in app["message"], app["message"]
    [last, *_] = world.ledger()
    assert (last.outcome, last.verdict) == ("succeeded", "healthy") and proof in last.message
    running = [image for name, image in pod_images(world).items() if not name.startswith("api-migrate")]
    assert running and all(image == f"{world.registry}/{chart}@{digest}" for image in running)


def test_a_partitioned_statefulset_rolls_the_pods_above_the_partition(world: DeployWorld) -> None:
    config = use_chart(world, "statefulset", {"partition": 1, **migration(world, seed=5101)}, "statefulset")
    old = world.push("statefulset", "v1", seed=5102)
    code, _, err, _ = deploy(world, config, "v1")
    assert code == 0, err
    new = world.push("statefulset", "v2", seed=5103)
    code, out, err, _ = deploy(world, config, "v2")
    assert code == 0, err
    [app] = out["apps"]
    assert f"statefulset api-db: 1/1 ready pods run {new}" in app["message"]
    assert "1 held back by its update strategy" in app["message"]
    images = pod_images(world)
    assert images["api-db-0"].endswith(old) and images["api-db-1"].endswith(new)


@pytest.mark.parametrize(
    ("behaviour", "chart", "values", "reason"),
    [
        ("not-ready", "pod", {}, "NotReady"),
        ("fail", "job", {}, "BackoffLimitExceeded"),
        ("oom", "daemonset", {}, "OOMKilled"),
    ],
)
def test_a_digest_marked_in_the_lab_fails_however_its_repository_is_named(
    world: DeployWorld, lab: Lab, behaviour: str, chart: str, values: dict[str, Any], reason: str
) -> None:
    """``Lab.mark_image(digest, behaviour)``: the sandbox's 'this build is broken' for every failure class."""
    config = use_chart(world, chart, values, chart)
    digest = world.push(chart, "marked", seed=6000 + len(behaviour))
    lab.mark_image(digest, behaviour)
    code, out, err, elapsed = deploy(world, config, "marked")
    assert code == 1, err
    assert elapsed <= BUDGET
    assert out["error"]["reason"] == reason, out["error"]


def test_an_object_the_api_server_rejects_fails_the_deploy_without_helms_client_side_check(
    world: DeployWorld, tmp_path: Path
) -> None:
    """helm runs with --disable-openapi-validation (issue 29: 60% of an upgrade's CPU): a field the schema does not
    declare still fails the deploy, refused by the API server's server-side apply, and nothing rolls out."""
    chart = tmp_path / "typo"
    shutil.copytree(CHARTS / "pod", chart)
    template = chart / "templates" / "pod.yaml"
    template.write_text(template.read_text().replace("spec:\n", "spec:\n  restartPolicyy: Never\n", 1))
    config = use_chart(world, "pod", {}, "pod")
    config.write_text(config.read_text().replace(str(CHARTS / "pod"), str(chart)))
    world.push("pod", "typo", seed=4711)
    code, out, err, _ = deploy(world, config, "typo")
    assert code == 1, err
    assert "restartPolicyy" in out["error"]["message"] and "not declared in schema" in out["error"]["message"]
    assert world.pods() == []
