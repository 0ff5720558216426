"""Apps of one ``needs`` level roll out together (issue 14), on the fake context (tests/unit/fakes.py): apps
without needs start at once (a helm that waits until both have started, bounded so a test fails instead of
hanging); an app waits for what it needs and is never started when that fails; results keep the configured
order; the error names every failed app."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from deployctl.app.deploy import deploy
from deployctl.config import load
from deployctl.core.errors import OperationError
from deployctl.rollout import levels, waves
from deployctl.rollout.states import Verdict
from deployctl.runner import ProcessRunner
from tests.unit.fakes import FakeContext, FakeS3
from tests.unit.test_waves import interrupt_when

ROOT = Path(__file__).resolve().parents[2]
SHA = "c" * 40
DIGEST = "sha256:" + "e" * 64
APPS = {"web": [], "api": [], "jobs": ["api"]}  # jobs needs api; web and api need nothing


def test_levels_group_the_deploy_order_by_needs() -> None:
    assert levels.levels(["api", "web", "jobs"], APPS) == [["api", "web"], ["jobs"]]
    assert levels.levels(["jobs"], APPS) == [["jobs"]], "a need not rolled out this time is met by what runs"
    assert levels.levels(["a", "b", "c"], {"b": ["a"], "c": ["b"]}) == [["a"], ["b"], ["c"]]
    assert levels.levels([], {}) == []


@pytest.fixture
def ctx(tmp_path: Path) -> FakeContext:
    blocks = "".join(
        f'[tool.deployctl.apps.{name}]\nchart = "{ROOT / "charts" / "api"}"\nrelease = "{name}"\n'
        f'image = {{ registry = "r.example", repository = "{name}" }}\nneeds = {needs!r}\n'
        for name, needs in APPS.items()
    )
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.deployctl]\n{blocks}\n[tool.deployctl.environments.dev]\naws = {{ region = "us-east-1" }}\n'
        'terraform = { root = "tf", backend = { bucket = "acme-tfstate", key = "dev/terraform.tfstate", region = "us-east-1" } }\n'
        'cluster = { kubeconfig = "kubeconfig" }\nnamespace = "ns"\nvalues = "values-dev.yaml"\nlock_timeout_seconds = 0\n'
    )
    (tmp_path / "values-dev.yaml").write_text("".join(f"{name}:\n  replicaCount: 1\n" for name in APPS))
    return FakeContext(load(tmp_path / "pyproject.toml"), "dev", ProcessRunner(), s3=FakeS3(), digests={SHA: DIGEST})


def together(ctx: FakeContext, *, failing: set[str]) -> list[str]:
    """helm upgrade of web and api waits until both have started (10 s at most: a rollout one after the other
    breaks the barrier and fails the test); ``failing`` releases' rollouts fail. Returns what happened, in order."""
    cluster = ctx.fake_cluster
    barrier = threading.Barrier(2, timeout=10)
    upgrade, watch = cluster.upgrade, cluster.watch_release
    happened: list[str] = []

    def blocking_upgrade(**kwargs: Any) -> Any:
        happened.append(f"start {kwargs['release']}")
        if kwargs["release"] in ("web", "api"):
            barrier.wait()
        return upgrade(**kwargs)

    def judged(manifest: str, **kwargs: Any) -> Verdict:
        release = manifest.split("name: ")[1].strip()
        watch(manifest, **kwargs)
        happened.append(f"judged {release}")
        return Verdict("failed", f"{release}: CrashLoopBackOff") if release in failing else Verdict("complete", "ok")

    cluster.upgrade = blocking_upgrade  # type: ignore[method-assign]
    cluster.watch_release = judged  # type: ignore[method-assign]
    return happened


def test_apps_without_needs_roll_out_together_and_a_dependent_waits(ctx: FakeContext) -> None:
    happened = together(ctx, failing=set())
    report = deploy(ctx, image_tag=SHA)
    assert [r.app for r in report.apps] == ["api", "jobs", "web"], "the deploy order (config.deploy_order)"
    assert set(happened[:2]) == {"start api", "start web"}, "both started before either was judged"
    assert happened.index("start jobs") > happened.index("judged api"), "jobs waits for api"
    assert ctx.fake_cluster.serving == {"api": DIGEST, "web": DIGEST, "jobs": DIGEST}
    succeeded = [e.app for e in ctx.entries() if e.outcome == "succeeded"]
    assert sorted(succeeded) == ["api", "jobs", "web"]


def test_an_app_whose_need_failed_is_never_started(ctx: FakeContext) -> None:
    happened = together(ctx, failing={"api"})
    with pytest.raises(OperationError) as failed:
        deploy(ctx, image_tag=SHA)
    assert "start jobs" not in happened and "jobs" not in ctx.fake_cluster.serving
    assert failed.value.details["apps"] == {"api": "failed", "jobs": "not started", "web": "succeeded"}
    message = failed.value.message
    assert message.startswith("rollout of api to dev failed: api: CrashLoopBackOff")
    assert f"\napi: FAILED\njobs: not started (keeps what it ran)\nweb: runs {DIGEST} (rolled out)" in message
    assert ctx.fake_cluster.serving["web"] == DIGEST, "web (the same level) rolled out"
    outcomes = {e.app: e.outcome for e in ctx.entries() if e.outcome != "started"}
    assert outcomes == {"api": "failed", "web": "succeeded"}, "jobs: no entry, nothing started"


def test_every_failed_app_is_named(ctx: FakeContext) -> None:
    together(ctx, failing={"api", "web"})
    with pytest.raises(OperationError) as failed:
        deploy(ctx, image_tag=SHA)
    assert "\nalso FAILED: web: rollout of web to dev failed: web: CrashLoopBackOff" in failed.value.message
    assert failed.value.details["apps"] == {"api": "failed", "web": "failed", "jobs": "not started"}


def test_an_interrupt_reaches_every_app_of_every_cluster_of_a_wave() -> None:
    """Two clusters in one wave, each rolling out two apps of one level: four threads under two. An interrupt in
    the main thread reaches each cluster's thread, which forwards it to its apps (``parallel.run`` nests): all
    four stop within seconds, each as it would alone, and no later level starts."""
    ready = threading.Barrier(5, timeout=10)  # four rollouts running, and the thread that interrupts then
    lock = threading.Lock()
    stopped: list[str] = []
    started: list[str] = []

    def app(name: str) -> str:
        with lock:
            started.append(name)
        ready.wait()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                time.sleep(0.01)
        except KeyboardInterrupt:
            with lock:
                stopped.append(name)
            raise
        return name

    def cluster(target: waves.Target) -> levels.LevelRun[str]:
        return levels.run(["api", "web", "jobs"], APPS, lambda a: app(f"{target.name}/{a}"))

    interrupt_when(ready)
    begun = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        waves.run(waves.waves([waves.Target("use1", 1), waves.Target("euw1", 1)]), cluster)
    assert time.monotonic() - begun < 5
    assert sorted(stopped) == ["euw1/api", "euw1/web", "use1/api", "use1/web"]
    assert not [name for name in started if name.endswith("/jobs")], "the next level never starts"
