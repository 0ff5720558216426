"""Several clusters per environment (issue 19) through the real deploy and promote use cases on fake clusters (one
``FakeCluster`` per cluster, tests/unit/fakes.py): wave by wave, the first failed wave stops the release and the later
waves are never touched."""

from __future__ import annotations

import _thread
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from deployctl.adapters.helm import Revision
from deployctl.adapters.registry import TransferReport
from deployctl.app import promote as promote_app
from deployctl.app.context import Contexts
from deployctl.app.deploy import deploy
from deployctl.app.history import history
from deployctl.app.status import status
from deployctl.config import load
from deployctl.core.errors import OperationError
from deployctl.ledger.entry import Entry
from deployctl.ledger.store import Ledger
from deployctl.promotion.request import PromoteRequest
from deployctl.rollout import waves
from deployctl.rollout.states import Verdict
from deployctl.runner import ProcessRunner
from tests import values_files
from tests.gitrepo import git
from tests.unit.fakes import Events, FakeCluster, FakeContext, FakeS3
from tests.unit.test_waves import CONFIG, CRASH, NEW, OLD, SHA


class FleetContext(FakeContext):
    """``FakeContext`` with one fake cluster per configured cluster."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = [t.name for t in self.targets()]
        self.fakes = {n: FakeCluster(f"{n}-ns", self.s3, self.name) for n in names}

    @contextmanager
    def cluster(self, target: waves.Target | None = None) -> Iterator[Any]:
        yield self.fakes[target.name if target is not None else self.targets()[0].name]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(CONFIG.replace('promote_from = "dev"\n', ""))
    for name in ("values-dev.yaml", "values-prod.yaml"):
        (tmp_path / name).write_text(values_files.reference(name))
    return tmp_path


def prod(repo: Path, s3: FakeS3) -> FleetContext:
    digests = {SHA: NEW}
    return FleetContext(load(repo / "pyproject.toml"), "prod", ProcessRunner(), s3=s3, digests=digests)


def test_deploy_rolls_out_wave_by_wave_and_records_each_cluster(repo: Path) -> None:
    s3 = FakeS3()
    ctx = prod(repo, s3)
    result = deploy(ctx, image_tag=SHA)
    assert [(r.cluster, r.wave, r.image.registry) for r in result.apps] == [
        ("use1", 1, "registry.example:5000"),
        ("euw1", 2, "registry-eu.example:5000"),  # the cluster pulls from its own registry
    ]
    assert ctx.fakes["use1"].calls[-2:] == [f"upgrade api {NEW}", "watch api"]
    assert ctx.fakes["euw1"].lock_at_upgrade is not None, "one lock for every wave"
    assert ctx.fakes["euw1"].lock_at_upgrade["id"] == ctx.fakes["use1"].lock_at_upgrade["id"]  # type: ignore[index]
    done = [(e.cluster, e.outcome) for e in ctx.entries() if e.outcome != "started"]
    assert done == [("euw1", "succeeded"), ("use1", "succeeded")]
    data = json.loads(json.dumps(result.data()))
    assert [(a["cluster"], a["wave"]) for a in data["apps"]] == [("use1", 1), ("euw1", 2)]
    shown = status(ctx)
    assert [(a.cluster, a.healthy) for a in shown.apps] == [("use1", True), ("euw1", True)]
    assert shown.data()["apps"][1]["cluster"] == "euw1"
    assert "cluster " in history(ctx).text()[0]


def test_a_crash_in_wave_one_stops_before_wave_two_and_says_what_runs_where(repo: Path) -> None:
    s3 = FakeS3()
    ctx = prod(repo, s3)
    Ledger("prod", "acme-tfstate", s3).append(Entry("prod", "api", "deploy", "succeeded", digest=OLD, cluster="euw1"))
    Ledger("prod", "acme-tfstate", s3).append(Entry("prod", "api", "deploy", "succeeded", digest=OLD, cluster="use1"))
    ctx.fakes["use1"].verdict = CRASH
    with pytest.raises(OperationError) as caught:
        deploy(ctx, image_tag=SHA)
    assert ctx.fakes["euw1"].calls == [f"template api {NEW}"], "wave 2 rendered (validated), never upgraded"
    message = caught.value.message
    assert message.startswith("prod: cluster use1 (wave 1) failed; wave 2 not started: rollout of api to prod failed")
    assert f"use1 (wave 1): FAILED: api FAILED ({NEW} did not roll out; the previous pods serve), runs {OLD}" in message
    assert f"euw1 (wave 2): not started: api runs {OLD}" in message
    assert caught.value.hint is not None and "Roll forward" in caught.value.hint
    clusters: Any = caught.value.details["clusters"]
    assert {n: c["state"] for n, c in clusters.items()} == {"use1": "FAILED", "euw1": "not started"}
    newest = ctx.entries()[0]
    assert (newest.cluster, newest.outcome, newest.verdict) == ("use1", "failed", "failed")
    assert not [e for e in ctx.entries() if e.cluster == "euw1" and e.digest == NEW], "nothing recorded in wave 2"

    # an intent wave 2 left open (a run killed there) is settled by a rollout in wave 2, never by wave 1's
    ctx.fakes["use1"].verdict = Verdict("complete", "2 of 2 replicas updated and available")
    killed = Entry("prod", "api", "deploy", "started", digest=OLD, cluster="euw1")
    ctx.record(killed)
    ctx.fakes["euw1"].revisions["api"] = [Revision(1, "deployed", description=f"deployctl deploy (intent {killed.id})")]
    ctx.fakes["euw1"].verdict = CRASH
    with pytest.raises(OperationError, match="cluster euw1 .wave 2. failed"):
        deploy(ctx, image_tag=SHA)
    settled = [e for e in ctx.entries() if e.message.startswith("settled by a later run")]
    assert [(e.cluster, e.outcome) for e in settled] == [("euw1", "unknown")], "from euw1's helm history"


def test_a_wave_unhealthy_after_its_soak_stops_the_release(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (repo / "pyproject.toml").write_text(
        (repo / "pyproject.toml")
        .read_text()
        .replace('values = "values-prod.yaml"', 'values = "values-prod.yaml"\nwave_soak_minutes = 1')
    )
    s3 = FakeS3()
    ctx = prod(repo, s3)
    slept: list[float] = []

    def crash_later(_seconds: float) -> None:
        slept.append(_seconds)
        ctx.fakes["use1"].verdict = CRASH  # the pods crash while the wave soaks

    monkeypatch.setattr("deployctl.rollout.waves.time.sleep", crash_later)
    with pytest.raises(OperationError, match="not healthy after the wave soak"):
        deploy(ctx, image_tag=SHA)
    assert slept == [60.0]
    held: Any = ctx.fakes["use1"].lock_at_upgrade
    assert held["ttl_seconds"] == 120, "a short lease renewed while held (across the soak): no soak added to it"
    assert ctx.fakes["euw1"].calls == [f"template api {NEW}"]
    newest = ctx.entries()[0]
    assert (newest.cluster, newest.outcome, newest.verdict) == ("use1", "failed", "failed")


PROGRESSING = Verdict("progressing", "1 of 2 pods ready")
COMPLETE = Verdict("complete", "2 of 2 replicas updated and available")


def soaking_prod(repo: Path, monkeypatch: pytest.MonkeyPatch, *, watched: Verdict, then: Verdict) -> FleetContext:
    """prod with a 1-minute wave soak at whose end wave 1's release is in progress (an autoscaler adds pods); each
    watch of it from then on answers ``watched``, and the checks after that watch see ``then``. A controller cannot
    be made to move on at that moment on demand, hence the fake. The pauses between checks do not wait."""
    (repo / "pyproject.toml").write_text(
        (repo / "pyproject.toml")
        .read_text()
        .replace('values = "values-prod.yaml"', 'values = "values-prod.yaml"\nwave_soak_minutes = 1')
    )
    ctx = prod(repo, FakeS3())
    cluster = ctx.fakes["use1"]

    def watch(manifest: str, **_: Any) -> Verdict:
        cluster.calls.append(f"watch {manifest.split('name: ')[1].strip()}")
        cluster.verdict = then
        return watched

    def sleep(seconds: float) -> None:
        if seconds == 60.0:  # the soak ends: in progress, and watched as the test says
            cluster.verdict = PROGRESSING
            cluster.watch_release = watch  # type: ignore[method-assign]

    monkeypatch.setattr("deployctl.rollout.waves.time.sleep", sleep)  # the time module: every sleep, the pause's too
    return ctx


def test_a_wave_in_progress_after_its_soak_is_watched_until_complete_then_the_next_wave_runs(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An autoscaler adding pods during the soak is a rollout in progress, not a failure (it failed the release)."""
    ctx = soaking_prod(repo, monkeypatch, watched=COMPLETE, then=COMPLETE)
    result = deploy(ctx, image_tag=SHA)
    assert [(r.cluster, r.outcome) for r in result.apps] == [("use1", "succeeded"), ("euw1", "succeeded")]
    assert ctx.fakes["use1"].calls.count("watch api") == 2, "the rollout's watch, then the one after the soak"
    assert not [e for e in ctx.entries() if e.outcome == "failed"]


def test_a_wave_in_progress_after_its_soak_that_then_fails_stops_the_release_with_the_watchs_verdict(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = soaking_prod(repo, monkeypatch, watched=CRASH, then=CRASH)
    with pytest.raises(OperationError, match="not healthy after the wave soak: pod api-1 container api: CrashLoop"):
        deploy(ctx, image_tag=SHA)
    assert ctx.fakes["euw1"].calls == [f"template api {NEW}"], "wave 2 never upgraded"
    newest = ctx.entries()[0]
    assert (newest.cluster, newest.outcome, newest.verdict) == ("use1", "failed", "failed")


def test_a_wave_still_in_progress_at_the_rollout_timeout_fails_naming_it(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = soaking_prod(repo, monkeypatch, watched=COMPLETE, then=PROGRESSING)  # the controller keeps moving on
    with pytest.raises(OperationError, match="not healthy after the wave soak: deployment api: rollout progressing"):
        deploy(ctx, image_tag=SHA, rollout_timeout=0.2)
    assert ctx.fakes["use1"].calls.count("watch api") >= 2, "watched again until the timeout"
    assert ctx.fakes["euw1"].calls == [f"template api {NEW}"]


def test_sigterm_stops_both_clusters_of_a_wave_marks_each_intent_and_frees_the_lock(repo: Path) -> None:
    """Both clusters in wave 1, each stuck for 30 s unless stopped: use1 while helm runs (no revision), euw1 in
    the rollout watch (helm made revision 1). An interrupt in the main thread (what the CLI makes of SIGTERM)
    stops both within seconds: use1's intent `interrupted`, euw1's `unknown` (it reached the cluster, never
    judged), the lock released. Before issue 25: 30 s, then both recorded as rolled out."""
    (repo / "pyproject.toml").write_text((repo / "pyproject.toml").read_text().replace("wave = 2", "wave = 1"))
    s3 = FakeS3()
    ctx = prod(repo, s3)
    both = threading.Barrier(3, timeout=10)  # the two rollouts, stuck, and the thread that signals then

    def stuck() -> None:
        both.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.01)

    use1, euw1 = ctx.fakes["use1"], ctx.fakes["euw1"]
    upgrade, watch = use1.upgrade, euw1.watch_release

    def slow_upgrade(**kwargs: Any) -> Any:
        stuck()  # helm still running: nothing made yet
        return upgrade(**kwargs)

    def slow_watch(manifest: str, **kwargs: Any) -> Verdict:
        stuck()
        return watch(manifest, **kwargs)

    use1.upgrade = slow_upgrade  # type: ignore[method-assign]
    euw1.watch_release = slow_watch  # type: ignore[method-assign]

    def signal_when_both_stuck() -> None:
        both.wait()
        time.sleep(0.2)
        _thread.interrupt_main()  # SIGINT: KeyboardInterrupt in the main thread, as the CLI makes of SIGTERM

    threading.Thread(target=signal_when_both_stuck, daemon=True).start()
    begun = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        deploy(ctx, image_tag=SHA)
    assert time.monotonic() - begun < 5, "both clusters stopped within seconds"
    intents = {e.cluster: e for e in ctx.entries() if e.outcome == "started"}
    done = {e.cluster: (e.outcome, e.intent) for e in ctx.entries() if e.outcome != "started"}
    assert done == {"use1": ("interrupted", intents["use1"].id), "euw1": ("unknown", intents["euw1"].id)}
    assert "helm made revision 1" in next(e.message for e in ctx.entries() if e.outcome == "unknown")
    assert s3.held_lock("prod") is None, "the lock is released on the way out"


def test_promote_copies_to_each_cluster_registry_then_rolls_out_in_waves(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / "pyproject.toml").write_text(CONFIG)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "release me")
    git(repo, "tag", "release-1.0.0")
    commit = git(repo, "rev-parse", "HEAD")
    s3, events = FakeS3(), Events()
    config = load(repo / "pyproject.toml")
    contexts = Contexts(config, ProcessRunner(), events)
    tags: dict[tuple[str, str], str] = {("registry.example:5000", commit): NEW}
    copies: list[tuple[str, str]] = []

    def endpoint(image: Any) -> Any:
        class _Endpoint:
            host, repository, ecr = image.registry, image.repository, None
            name = f"{image.registry}/{image.repository}"

            def resolve(self, tag: str) -> str | None:
                return tags.get((image.registry, tag))

        return _Endpoint()

    dev = FakeContext(config, "dev", contexts.runner, s3=s3, events=events)
    target = FleetContext(config, "prod", contexts.runner, s3=s3, events=events)
    for ctx in (dev, target):
        monkeypatch.setattr(ctx, "endpoint", endpoint)
        contexts._built[ctx.name] = ctx
    deploy(dev, digest=NEW)

    def transfer(_source: Any, to: Any, digest: str, tag: str, **_: Any) -> TransferReport:
        copies.append((to.host, tag))
        tags[(to.host, tag)] = digest
        return TransferReport("copy", digest, f"{to.name}:{tag}", manifests_put=1)

    monkeypatch.setattr("deployctl.adapters.registry.promote_image", transfer)
    result = promote_app.promote(contexts, PromoteRequest("release-1.0.0", to_env="prod"))
    assert sorted(copies) == [("registry-eu.example:5000", "release-1.0.0"), ("registry.example:5000", "release-1.0.0")]
    assert [s.name for s in result.steps] == [
        "image api",
        "image api -> registry-eu.example:5000",
        "deploy api in use1",
        "deploy api in euw1",
        "values",  # recorded once it runs: never ahead of what runs
    ]
    assert result.plan.data()["clusters"] == [{"cluster": "use1", "wave": 1}, {"cluster": "euw1", "wave": 2}]
    assert {e.cluster for e in target.entries() if e.outcome == "succeeded"} == {"use1", "euw1"}
    again, *_ = promote_app.plan(contexts, PromoteRequest("release-1.0.0", to_env="prod"))
    assert again.noop, "every cluster runs it and every registry has the tag"
