"""Several clusters per environment (issue 19), table-tested where pure (targets and waves, the wave runner, what
every cluster runs after a stop, evidence from several source clusters, the target's state per cluster); the use
cases on fake clusters are in test_waves_use_cases.py."""

from __future__ import annotations

import _thread
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deployctl.config import ConfigProblemsError, load
from deployctl.core.errors import DeployctlError, OperationError
from deployctl.core.refs import ImageRef, ReleaseTag, Version
from deployctl.ledger.entry import Entry, Outcome, open_intents
from deployctl.promotion.evidence import fleet_evidence
from deployctl.promotion.facts import Facts
from deployctl.promotion.gates import judge
from deployctl.promotion.target import target_state
from deployctl.rollout import parallel, waves
from deployctl.rollout.states import Verdict

ROOT = Path(__file__).resolve().parents[2]
SHA = "a" * 40
OLD, NEW = "sha256:" + "0" * 64, "sha256:" + "d" * 64
CRASH = Verdict("failed", "pod api-1 container api: CrashLoopBackOff", "api-1", "api", "CrashLoopBackOff")
BACKEND = '{{ bucket = "acme-tfstate", key = "{env}/terraform.tfstate", region = "us-east-1" }}'
CONFIG = f"""
[tool.deployctl]
[tool.deployctl.apps.api]
chart = "{ROOT / "charts" / "api"}"
release = "api"
image = {{ registry = "registry.example:5000", repository = "api" }}

[tool.deployctl.environments.dev]
aws = {{ region = "us-east-1" }}
terraform = {{ root = "tf", backend = {BACKEND.format(env="dev")} }}
cluster = {{ kubeconfig = "kubeconfig" }}
namespace = "api"
values = "values-dev.yaml"
lock_timeout_seconds = 0

[tool.deployctl.environments.prod]
aws = {{ region = "us-east-1" }}
terraform = {{ root = "tf", backend = {BACKEND.format(env="prod")} }}
namespace = "api"
values = "values-prod.yaml"
promote_from = "dev"
promote_soak_minutes = 0  # promotes right after dev: no soak, on purpose
lock_timeout_seconds = 0

[tool.deployctl.environments.prod.clusters.use1]
kubeconfig = "kubeconfig"
wave = 1

[tool.deployctl.environments.prod.clusters.euw1]
kubeconfig = "kubeconfig"
region = "eu-west-1"
image_registry = "registry-eu.example:5000"
wave = 2
"""


def env_of(text: str, tmp_path: Path, name: str = "prod") -> Any:
    (tmp_path / "pyproject.toml").write_text(text)
    return load(tmp_path / "pyproject.toml").settings.environments[name]


# ------------------------------------------------------------------------------------------ pure


@pytest.mark.parametrize(
    ("clusters", "expected"),
    [
        ({}, [[None]]),
        ({"b": 1, "a": 1}, [["a", "b"]]),
        ({"eu": 2, "canary": 1, "us": 2}, [["canary"], ["eu", "us"]]),
        ({"late": 10, "first": 3}, [["first"], ["late"]]),  # wave numbers need not be consecutive
    ],
)
def test_targets_in_waves(tmp_path: Path, clusters: dict[str, int], expected: list[list[str | None]]) -> None:
    text = CONFIG.split("[tool.deployctl.environments.prod.clusters.use1]")[0]
    text += "".join(
        f'[tool.deployctl.environments.prod.clusters.{n}]\nkubeconfig = "k"\nwave = {w}\n' for n, w in clusters.items()
    )
    if not clusters:
        text = text.replace(
            'values = "values-prod.yaml"', 'values = "values-prod.yaml"\ncluster = { kubeconfig = "k" }'
        )
    env = env_of(text, tmp_path)
    assert [[t.name for t in wave] for wave in waves.waves(waves.targets(env))] == expected
    assert waves.first_wave(env) == tuple(n for n in expected[0] if n)


def test_a_cluster_inherits_the_environment_region_and_registry(tmp_path: Path) -> None:
    env = env_of(
        CONFIG.replace(
            "lock_timeout_seconds = 0\n\n[tool.deployctl.environments.prod.clusters.use1]",
            'lock_timeout_seconds = 0\nimage_registry = "registry-us.example:5000"\n\n[tool.deployctl.environments.prod.clusters.use1]',
        ),
        tmp_path,
    )
    use1, euw1 = waves.targets(env)
    assert (use1.region, use1.image_registry) == ("us-east-1", "registry-us.example:5000")
    assert (euw1.region, euw1.image_registry) == ("eu-west-1", "registry-eu.example:5000")


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            'promote_from = "dev"',
            'promote_from = "dev"\ncluster = { kubeconfig = "k" }',
            "set 'cluster' .one. or 'clusters'",
        ),
        ('namespace = "api"\nvalues = "values-prod.yaml"', "", "also needs 'namespace' and 'values'"),
        ("wave = 2", "wave = 0", "clusters.euw1.wave: .*greater than or equal to 1"),
        ("wave = 2", "wavee = 2", "did you mean 'wave'"),
        ('region = "eu-west-1"', 'region = "Europe"', "clusters.euw1.region"),
    ],
)
def test_cluster_configuration_problems(tmp_path: Path, old: str, new: str, problem: str) -> None:
    assert old in CONFIG
    with pytest.raises(ConfigProblemsError, match=problem):
        env_of(CONFIG.replace(old, new), tmp_path)


T1, T2, T3 = waves.Target("use1", 1), waves.Target("euw1", 2), waves.Target("apse1", 2)


def test_run_stops_after_the_first_failed_wave_and_never_touches_later_waves() -> None:
    rolled: list[str | None] = []

    def roll(target: waves.Target) -> str:
        rolled.append(target.name)
        if target.name == "use1":
            raise OperationError("rollout of api to prod failed: CrashLoopBackOff", details={"digest": NEW})
        return "ok"

    ran = waves.run(waves.waves([T3, T2, T1]), roll)
    assert rolled == ["use1"], "wave 2 never started"
    assert [t.name for t, _ in ran.failed] == ["use1"]
    assert [t.name for t in ran.not_started] == ["apse1", "euw1"]
    assert not ran.ok


def test_run_rolls_out_a_wave_in_parallel_and_soaks_then_judges_again_between_waves() -> None:
    slept: list[float] = []
    judged: list[str | None] = []

    def roll(target: waves.Target) -> str:
        return str(target.name)

    def after_soak(target: waves.Target) -> DeployctlError | None:
        judged.append(target.name)
        return None

    ran = waves.run(
        waves.waves([T1, T2, T3]), roll, soak=timedelta(minutes=2), after_soak=after_soak, sleep=slept.append
    )
    assert ran.ok and [r for _, r in ran.done] == ["use1", "apse1", "euw1"]
    assert slept == [120.0], "one soak: between the two waves, not after the last"
    assert judged == ["use1"] and ran.soaked == (1,)

    failing = waves.run(
        waves.waves([T1, T2]),
        roll,
        soak=timedelta(seconds=1),
        after_soak=lambda _target: OperationError("api in prod is not healthy after the wave soak"),
        sleep=slept.append,
    )
    assert [t.name for t, _ in failing.failed] == ["use1"] and [t.name for t in failing.not_started] == ["euw1"]


def interrupt_when(ready: threading.Barrier) -> None:
    """Ctrl-C (KeyboardInterrupt in the main thread, as the CLI makes of SIGTERM) once every other party of
    ``ready`` has arrived (the rollouts are where the test wants them)."""

    def send() -> None:
        ready.wait()
        time.sleep(0.1)
        _thread.interrupt_main()

    threading.Thread(target=send, daemon=True).start()


def test_an_interrupt_stops_every_cluster_of_the_wave_within_seconds() -> None:
    """Both clusters of wave 1 roll out for 30 s unless stopped; an interrupt stops both (each records that it
    was stopped, as one cluster does alone), wave 2 never starts, and the interrupt goes on at once. Before
    issue 25 the thread pool waited for every rollout to finish: 30 s, and both "done"."""
    lock = threading.Lock()
    happened: list[str] = []
    ready = threading.Barrier(3, timeout=10)  # both rollouts running, and the thread that then interrupts

    def roll(target: waves.Target) -> str:
        with lock:
            happened.append(f"start {target.name}")
        ready.wait()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # a rollout: helm, then the watch (Python code, not one C call)
                time.sleep(0.01)
        except KeyboardInterrupt:
            with lock:
                happened.append(f"interrupted {target.name}")
            raise
        with lock:
            happened.append(f"done {target.name}")
        return "ok"

    interrupt_when(ready)
    begun = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        waves.run(waves.waves([T1, T2, waves.Target("apse1", 1)]), roll)
    assert time.monotonic() - begun < 5, "stopped within seconds, not after the rollouts"
    assert sorted(happened) == ["interrupted apse1", "interrupted use1", "start apse1", "start use1"]


def test_an_interrupt_waits_only_a_bounded_time_for_a_cluster_that_cannot_stop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rollout that goes on after the interrupt (stuck in one call, where no exception lands) does not keep the
    run: after ``parallel.STOP_SECONDS`` the interrupt goes on (the lock is released; the next run settles the
    intent it left open)."""
    monkeypatch.setattr(parallel, "STOP_SECONDS", 0.5)
    ready, stuck = threading.Barrier(3, timeout=10), threading.Event()
    stopped: list[str | None] = []

    def roll(target: waves.Target) -> str:
        ready.wait()
        if target.name == "apse1":
            try:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    time.sleep(0.01)
            except KeyboardInterrupt:
                stopped.append(target.name)
                raise
        stuck.wait(30)  # one C call: the forwarded interrupt waits until it returns
        return "late"

    interrupt_when(ready)
    begun = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        waves.run(waves.waves([T1, waves.Target("apse1", 1)]), roll)
    assert 0.5 <= time.monotonic() - begun < 5
    assert stopped == ["apse1"]
    stuck.set()


def test_what_every_cluster_runs_after_a_stop() -> None:
    error = OperationError("rollout of web to prod failed: CrashLoopBackOff", details={"digest": NEW})
    ran: waves.WaveRun[Any] = waves.WaveRun(
        done=((T3, [("api", NEW), ("web", NEW)]),), failed=((T1, error),), not_started=(T2,)
    )
    before = {("use1", "api"): OLD, ("use1", "web"): OLD, ("euw1", "api"): OLD, ("euw1", "web"): None}
    states = waves.fleet(ran, ["api", "web"], before, {"use1": [("api", NEW)]})
    assert [(s.cluster, s.state, dict(s.runs)) for s in states] == [
        ("use1", "FAILED", {"api": NEW, "web": OLD}),
        ("apse1", "rolled out", {"api": NEW, "web": NEW}),
        ("euw1", "not started", {"api": OLD, "web": None}),
    ]
    assert "FAILED" in states[0].detail["web"] and states[0].detail["api"] == "rolled out"
    stopped = waves.stopped("prod", ran, states, "Roll forward: fix it")
    assert stopped is error and stopped.message.startswith("prod: cluster use1 (wave 1) failed; wave 2 not started: ")
    assert f"  euw1 (wave 2): not started: api runs {OLD}; web runs nothing recorded" in stopped.message
    assert stopped.details["clusters"]["use1"]["runs"] == {"api": NEW, "web": OLD}  # type: ignore[index]
    assert stopped.hint is not None and "later waves were not touched" in stopped.hint


def test_previous_digest_per_cluster_is_its_newest_successful_rollout() -> None:
    entries = [
        Entry("prod", "api", "promote", "failed", digest=NEW, cluster="use1"),
        Entry("prod", "api", "promote", "succeeded", digest=OLD, cluster="use1"),
        Entry("prod", "api", "promote", "succeeded", digest=NEW, cluster="euw1"),
    ]
    assert waves.previous(entries, "api", "use1") == OLD
    assert waves.previous(entries, "api", "euw1") == NEW
    assert waves.previous(entries, "api", None) is None


NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def rollout(outcome: Outcome, cluster: str | None, minutes_ago: int, digest: str = NEW) -> Entry:
    verdict = "healthy" if outcome == "succeeded" else "failed"
    at = (NOW - timedelta(minutes=minutes_ago)).isoformat()
    return Entry("staging", "api", "deploy", outcome, digest=digest, verdict=verdict, cluster=cluster, time=at)


@pytest.mark.parametrize(
    ("entries", "proven", "missing", "ran_minutes"),
    [
        ([rollout("succeeded", "a", 60), rollout("succeeded", "b", 30)], True, (), 30),  # the shorter counts
        ([rollout("succeeded", "a", 60)], False, ("b",), 60),  # every first-wave cluster
        ([rollout("succeeded", "a", 60), rollout("succeeded", "b", 30), rollout("failed", "c", 10)], False, (), 30),
        ([rollout("succeeded", "a", 60), rollout("succeeded", "b", 30), rollout("succeeded", "c", 10)], True, (), 30),
        ([rollout("succeeded", "a", 60), rollout("succeeded", "b", 30), rollout("failed", "a", 5)], False, (), 5),
        ([rollout("succeeded", None, 60)], False, ("a", "b"), 0),  # an entry of no cluster counts for none
    ],
)
def test_evidence_from_several_source_clusters(
    entries: list[Entry], proven: bool, missing: tuple[str, ...], ran_minutes: int
) -> None:
    found = fleet_evidence(entries, env="staging", app="api", digest=NEW, now=NOW, first_wave=("a", "b"))
    assert (found.proven, found.missing) == (proven, missing)
    assert found.clusters == ("a", "b")
    if proven:
        assert found.ran_for == timedelta(minutes=ran_minutes)
        assert "first-wave clusters (a, b)" in found.describe()
    assert fleet_evidence(entries, env="staging", app="api", digest=NEW, now=NOW).clusters == ()


def test_the_target_state_per_cluster_names_the_clusters_behind(tmp_path: Path) -> None:
    env = env_of(CONFIG, tmp_path)
    entries = [
        Entry("prod", "api", "promote", "succeeded", digest=NEW, release="release-1.1.0", cluster="use1"),
        Entry("prod", "api", "promote", "succeeded", digest=OLD, release="release-1.0.0", cluster="euw1"),
        Entry("prod", "api", "promote", "succeeded", digest=OLD, release="release-1.0.0", cluster="use1"),
    ]
    entries = [replace(e, verdict="healthy") for e in entries]  # what the target runs: its healthy rollouts
    version, digest, source, behind = target_state(entries, env, "api", ("use1", "euw1"))
    assert (str(version), digest, source, behind) == ("1.1.0", NEW, "ledger", ("euw1",))
    assert target_state(entries, env, "api")[3] == ()


@pytest.mark.parametrize(
    ("behind", "regional", "done", "refused"),
    [
        ((), (), True, set()),
        (("euw1",), (), False, set()),  # a release stopped before wave 2: promoting it again rolls out again
        ((), (("registry-eu.example:5000", None),), False, set()),  # not yet in a cluster's own registry
        ((), (("registry-eu.example:5000", OLD),), False, {"tag-immutable"}),  # the tag names other bytes there
    ],
)
def test_done_and_the_tag_gate_over_every_cluster(
    behind: tuple[str, ...], regional: tuple[tuple[str, str | None], ...], done: bool, refused: set[str]
) -> None:
    facts = Facts(
        release=ReleaseTag.parse("release-1.1.0"),
        commit=SHA,
        on_main=True,
        main_ref="origin/main",
        source_env="dev",
        target_env="prod",
        source_image=ImageRef("registry.example:5000", "api", tag=SHA),
        source_digest=NEW,
        evidence=None,
        target_version=Version.parse("1.1.0"),
        target_digest=NEW,
        target_from="ledger",
        target_tag_digest=NEW,
        behind=behind,
        regional_tags=regional,
    )
    assert facts.done is done
    assert {g.name for g in judge(facts) if g.refused} == refused


def test_open_intents_per_cluster() -> None:
    use1 = Entry("prod", "api", "promote", "started", digest=NEW, cluster="use1")
    euw1 = Entry("prod", "api", "promote", "started", digest=NEW, cluster="euw1")
    entries = [use1, euw1]
    assert open_intents(entries, "api", "use1") == [use1], "a cluster settles only its own intents"
    assert open_intents(entries, "api", None) == [], "the one cluster of a single-cluster environment"
    assert open_intents(entries, "api") == entries


def test_a_single_cluster_entry_keeps_its_json() -> None:
    assert "cluster" not in Entry("dev", "api", "deploy", "succeeded").to_dict()
    assert Entry("prod", "api", "deploy", "succeeded", cluster="use1").to_dict()["cluster"] == "use1"
    assert Entry.from_dict(Entry("prod", "api", "deploy", "succeeded", cluster="euw1").to_dict()).cluster == "euw1"
