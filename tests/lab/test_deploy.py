"""``deployctl deploy/status/diff/lock`` end to end: real helm 4 (and helm 3), a real control plane with
kwok nodes, a real OCI registry, moto S3 for the lock and the history, a real git repository.

kwok drives pods to Ready, or to CrashLoopBackOff when the image reference contains ``crashloop``,
or to ErrImagePull/ImagePullBackOff when it contains ``does-not-exist``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.lab.deploy_world import HELM_WAIT_BUDGET, DeployWorld, measure
from tests.lab.world import ROOT

pytestmark = pytest.mark.lab


@pytest.fixture
def world(deploy_world: DeployWorld) -> DeployWorld:
    return deploy_world


def test_install_upgrade_status_and_history(world: DeployWorld) -> None:
    first = world.push("api", world.head, seed=1)  # CI tags each image with its commit
    code, out, err = world.run("deploy", "dev")  # default tag: the current commit
    assert code == 0, err
    assert out["apps"][0]["image"]["digest"] == first
    assert out["apps"][0]["image"]["tag"] == world.head
    assert out["apps"][0]["git_sha"] == world.head
    assert out["apps"][0]["revision"] == 1
    assert out["apps"][0]["helm_major_version"] == 4

    second = world.push("api", "v2", seed=2)
    code, out, err = world.run("deploy", "dev", "--image-tag", "v2", "--app", "api")
    assert code == 0, err
    assert out["apps"][0]["revision"] == 2
    assert out["apps"][0]["image"]["digest"] == second

    code, out, err = world.run("status", "dev")
    assert code == 0, err
    [app] = out["apps"]
    assert (app["revision"], app["helm_status"], app["digest"], app["tag"]) == (2, "deployed", second, "v2")
    assert (app["ready"], app["desired"], app["healthy"]) == (1, 1, True)
    assert app["matches_values"] is None  # dev's values file pins no digest
    running = [p for p in world.pods() if p["status"].get("phase") == "Running"]
    assert running
    assert all(second in p["spec"]["containers"][0]["image"] for p in running)

    entries = world.ledger()
    assert [(e.action, e.outcome, e.digest) for e in entries] == [
        ("deploy", "succeeded", second),
        ("deploy", "succeeded", first),
    ]
    assert entries[1].commit == world.head
    assert entries[0].tag == "v2"
    # each written ahead as an intent before helm ran, and completed by the outcome
    assert sorted(e.intent or "" for e in entries) == sorted(i.id for i in world.intents())

    code, out, _ = world.run("lock", "status", "dev")
    assert code == 0
    assert out["locked"] is False


def test_helm3_compatibility(world: DeployWorld, tmp_path: Path) -> None:
    """With helm 3 first on PATH as `helm`, install and upgrade work the same."""
    bin_dir = tmp_path / "helm3-first"
    bin_dir.mkdir()
    helm3 = next(Path(p) / "helm3" for p in world.env["PATH"].split(os.pathsep) if (Path(p) / "helm3").exists())
    (bin_dir / "helm").symlink_to(helm3)
    env = {**world.env, "PATH": f"{bin_dir}{os.pathsep}{world.env['PATH']}"}
    world.push("api", "v1", seed=11)
    digest = world.push("api", "v2", seed=12)
    for tag in ("v1", "v2"):
        proc = world.spawn("deploy", "dev", "--image-tag", tag, env=env)
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        assert json.loads(out)["apps"][0]["helm_major_version"] == 3
    assert json.loads(out)["apps"][0]["image"]["digest"] == digest
    assert json.loads(out)["apps"][0]["revision"] == 2


# --------------------------------------------------------------------------- failing fast, no rollback


@pytest.mark.parametrize(
    ("repository", "reasons"),
    [
        ("api-crashloop", {"CrashLoopBackOff"}),
        ("api-does-not-exist", {"ErrImagePull", "ImagePullBackOff"}),
    ],
)
def test_broken_image_fails_in_seconds_and_old_pods_keep_serving(
    world: DeployWorld, repository: str, reasons: set[str]
) -> None:
    world.push("api", "good", seed=21)
    code, _, err = world.run("deploy", "dev", "--image-tag", "good")
    assert code == 0, err
    [serving] = [p["metadata"]["name"] for p in world.pods()]

    broken = world.write_config("broken.toml", repository=repository)
    bad = world.push(repository, "bad", seed=22)
    started = time.monotonic()
    code, out, err = world.run("deploy", "dev", "--image-tag", "bad", config=broken)
    elapsed = time.monotonic() - started
    assert code == 1, err
    assert elapsed < 60, f"took {elapsed:.1f}s (helm --wait would take {HELM_WAIT_BUDGET:.0f}s)"
    measure(f"deployctl time-to-failure for {repository}: {elapsed:.1f}s")
    details = out["error"]
    assert details["reason"] in reasons
    assert details["container"] == "api"
    assert details["pod"] in err
    assert details["reason"] in err
    assert "Roll forward" in err
    assert "rolled back" in err  # says nothing was

    pods = {p["metadata"]["name"]: p for p in world.pods()}
    assert serving in pods, "the old pod must keep serving"
    assert all(c["ready"] for c in pods[serving]["status"]["containerStatuses"])
    # No automatic rollback: the release stays at the broken revision, the history says failed.
    assert world.revisions() == [1, 2]
    [last, *_] = world.ledger()
    assert (last.action, last.outcome, last.digest) == ("deploy", "failed", bad)

    # Roll forward: a fixed image deploys over the broken revision.
    world.push("api", "fixed", seed=23)
    code, out, err = world.run("deploy", "dev", "--image-tag", "fixed")
    assert code == 0, err
    assert out["apps"][0]["revision"] == 3


# --------------------------------------------------------------------------- recovery and the lock


def test_drift_shows_in_diff(world: DeployWorld) -> None:
    world.push("api", "v1", seed=61)
    code, _, err = world.run("deploy", "dev", "--image-tag", "v1")
    assert code == 0, err
    code, out, err = world.run("diff", "dev", "--detailed-exitcode")
    assert code == 0, (out, err)
    assert out["changed"] is False

    world.kubectl("scale", "deployment/api", "--replicas=3")
    code, out, err = world.run("diff", "dev", "--detailed-exitcode")
    assert code == 3, err
    [changed] = [o for o in out["apps"][0]["objects"] if o["change"] != "unchanged"]
    assert changed["kind"] == "Deployment"
    assert "-  replicas: 3" in changed["diff"]
    assert "+  replicas: 1" in changed["diff"]

    code, _, err = world.run("deploy", "dev", "--image-tag", "v1")  # a deploy restores the chart's state
    assert code == 0, err
    code, out, _ = world.run("diff", "dev", "--detailed-exitcode")
    assert code == 0, out


# --------------------------------------------------------------------------- bad inputs


def test_bad_inputs_fail_clearly_and_create_no_revision(world: DeployWorld, tmp_path: Path) -> None:
    world.push("api", "v1", seed=71)
    code, _, err = world.run("deploy", "dev", "--image-tag", "v1")
    assert code == 0, err
    assert world.revisions() == [1]

    (world.repo / "values-bad.yaml").write_text("replicaCount: abc\n")
    schema = world.write_config("schema.toml", values="values-bad.yaml")
    missing = world.write_config("missing.toml", values="values-nope.yaml")
    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(world.kubeconfig.read_text().replace("https://127.0.0.1:", "https://127.0.0.1:1#"))
    unreachable = world.write_config("unreachable.toml", kubeconfig=dead)
    cases: list[tuple[list[str], Path | None, int, str]] = [
        (["deploy", "dev", "--app", "nope", "--image-tag", "v1"], None, 2, "unknown app 'nope'"),
        (["deploy", "dev", "--image-tag", "v1"], missing, 2, "values-nope.yaml"),
        (["deploy", "dev", "--image-tag", "v1"], schema, 2, "/replicaCount"),
        (["deploy", "dev", "--image-tag", "no-such-tag"], None, 2, "'no-such-tag' not found"),
        (["deploy", "dev", "--digest", "sha256:" + "f" * 64], None, 2, "not found"),
        (["deploy", "dev", "--digest", "sha256:nope"], None, 2, "sha256:<64 hex digits>"),
        (["deploy", "dev", "--image-tag", "v1"], unreachable, 1, "unreachable"),
        (["status", "dev"], unreachable, 1, "cluster"),
    ]
    for args, config, expected, needle in cases:
        code, out, err = world.run(*args, config=config)
        assert code == expected, (args, err)
        assert needle in err, (args, err)
        assert out["ok"] is False
        assert "Traceback" not in err
    assert world.revisions() == [1]
    assert [e.outcome for e in world.ledger()] == ["succeeded"]
    code, out, _ = world.run("lock", "status", "dev")
    assert out["locked"] is False  # every failure released the lock


# --------------------------------------------------------------------------- measurement (opt-in: 5 minutes)


@pytest.mark.skipif(
    not os.environ.get("DEPLOYCTL_MEASURE"), reason="set DEPLOYCTL_MEASURE=1 (runs helm --wait, ~5 min)"
)
def test_measure_helm_wait_time_to_failure(world: DeployWorld) -> None:
    world.push("api", "good", seed=81)
    code, _, err = world.run("deploy", "dev", "--image-tag", "good")
    assert code == 0, err
    bad = world.push("api-crashloop", "bad", seed=82)
    started = time.monotonic()
    result = world.helm(
        "upgrade", "api", str(ROOT / "charts" / "api"), "-f", str(world.repo / "values-dev.yaml"),
        "--set-string", f"image.repository={world.registry}/api-crashloop", "--set-string", f"image.digest={bad}",
        "--wait", "--timeout", "5m", check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    measure(f"helm upgrade --wait --timeout 5m time-to-failure: {elapsed:.1f}s")
    assert result.returncode != 0
    assert elapsed > 60
