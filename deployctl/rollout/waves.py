"""An environment's clusters rolled out wave by wave, pure apart from the threads and the soak's sleep: which
clusters (``targets``), in which waves (``waves``), running each wave's clusters in parallel and stopping after
the first wave with a failure (``run``), and what every cluster runs afterwards (``fleet``). Table-tested in
tests/unit/test_waves.py; ``app.steps.cluster_waves.roll_out_waves`` feeds it the rollouts.

An environment with one ``cluster`` is one target named None: nothing is said per cluster, and its rollout runs
in the calling thread exactly as before. A wave of several clusters runs in threads that an interrupt stops
together (``parallel``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar

from deployctl.config import Environment
from deployctl.core.errors import DeployctlError
from deployctl.ledger.entry import Entry
from deployctl.rollout import parallel

T = TypeVar("T")
ROLLOUTS = ("deploy", "promote")


@dataclass(frozen=True)
class Target:
    """One cluster an environment rolls out to."""

    name: str | None  # None: the environment's one cluster (``cluster``)
    wave: int = 1
    region: str = ""
    image_registry: str | None = None  # the cluster's own registry (None: the environment's, else the apps')

    def describe(self) -> str:
        return f"{self.name} (wave {self.wave})" if self.name else "the cluster"


def targets(env: Environment) -> tuple[Target, ...]:
    """The clusters of ``env`` in rollout order: by wave, then by name."""
    if env.clusters:
        found = [
            Target(name, spec.wave, spec.region or env.aws.region, spec.image_registry or env.image_registry)
            for name, spec in env.clusters.items()
        ]
        return tuple(sorted(found, key=lambda t: (t.wave, t.name or "")))
    if env.cluster is not None:
        return (Target(None, 1, env.aws.region, env.image_registry),)
    return ()


def waves(found: Sequence[Target]) -> tuple[tuple[Target, ...], ...]:
    """``found`` grouped by wave, lowest first (the numbers need not be consecutive)."""
    numbers = sorted({t.wave for t in found})
    return tuple(tuple(sorted((t for t in found if t.wave == n), key=lambda t: t.name or "")) for n in numbers)


def first_wave(env: Environment) -> tuple[str, ...]:
    """The names of ``env``'s first-wave clusters (empty for an environment with one cluster)."""
    grouped = waves(targets(env))
    return tuple(t.name for t in grouped[0] if t.name) if grouped and env.clusters else ()


@dataclass(frozen=True)
class WaveRun(Generic[T]):
    """What ``run`` did: each cluster's result, the failures (none: every wave rolled out), what never started."""

    done: tuple[tuple[Target, T], ...] = ()
    failed: tuple[tuple[Target, DeployctlError], ...] = ()
    not_started: tuple[Target, ...] = ()
    soaked: tuple[int, ...] = ()  # the waves that soaked before the next one

    @property
    def ok(self) -> bool:
        return not self.failed


def run(
    planned: Sequence[Sequence[Target]],
    roll: Callable[[Target], T],
    *,
    soak: timedelta = timedelta(),
    after_soak: Callable[[Target], DeployctlError | None] | None = None,
    say: Callable[[str], None] = lambda _line: None,
    sleep: Callable[[float], None] | None = None,
) -> WaveRun[T]:
    """Roll out wave after wave: the clusters of a wave in parallel (each ``roll`` raises DeployctlError when its
    rollout fails), every one of them finished before the next wave starts; a wave with a failure stops the run
    and the later waves are never touched. Between waves, ``soak``; then ``after_soak`` judges each cluster of the
    wave again (an error stops the run as a failure of that cluster would). An interrupt (Ctrl-C, SIGTERM) stops
    the rollout in every cluster of the wave and goes on within seconds (``parallel.run``)."""
    done: list[tuple[Target, T]] = []
    failed: list[tuple[Target, DeployctlError]] = []
    soaked: list[int] = []
    for index, wave in enumerate(planned):
        say(f"wave {wave[0].wave}: {', '.join(t.name or '-' for t in wave)}")
        for target, outcome in zip(wave, parallel.run(wave, roll, name="wave"), strict=True):
            if isinstance(outcome, DeployctlError):
                failed.append((target, outcome))
            else:
                done.append((target, outcome))
        if not failed and index < len(planned) - 1 and soak > timedelta():
            say(f"wave {wave[0].wave} rolled out; soaking {soak.total_seconds():.0f}s before the next wave")
            (sleep or time.sleep)(soak.total_seconds())
            soaked.append(wave[0].wave)
            problems = [(t, after_soak(t)) for t in wave] if after_soak is not None else []
            failed += [(t, problem) for t, problem in problems if problem is not None]
        if failed:
            later = tuple(t for w in planned[index + 1 :] for t in w)
            return WaveRun(tuple(done), tuple(failed), later, tuple(soaked))
    return WaveRun(tuple(done), (), (), tuple(soaked))


# ------------------------------------------------------------------------------------------ what runs where


@dataclass(frozen=True)
class ClusterState:
    """One cluster after a rollout that stopped: its state and, per app, the digest its pods serve."""

    cluster: str
    wave: int
    state: str  # rolled out | FAILED | not started
    runs: Mapping[str, str | None]  # app -> digest (None: nothing recorded there)
    detail: Mapping[str, str] = field(default_factory=dict)  # app -> what happened to it

    def line(self) -> str:
        apps = "; ".join(
            f"{app} {self.detail[app] + ', ' if app in self.detail else ''}runs {digest or 'nothing recorded'}"
            for app, digest in self.runs.items()
        )
        return f"  {self.cluster} (wave {self.wave}): {self.state}: {apps}"

    def data(self) -> dict[str, Any]:
        return {"wave": self.wave, "state": self.state, "runs": dict(self.runs), "detail": dict(self.detail)}


def previous(entries: Sequence[Entry], app: str, cluster: str | None) -> str | None:
    """The digest ``app`` runs in ``cluster`` per the ledger (entries newest first): its newest successful
    rollout there (a failed one leaves the old pods serving: nothing is rolled back)."""
    return next(
        (
            e.digest
            for e in entries
            if e.app == app and e.cluster == cluster and e.action in ROLLOUTS and e.outcome == "succeeded"
        ),
        None,
    )


def fleet(
    ran: WaveRun[Sequence[tuple[str, str | None]]],
    apps: Sequence[str],
    before: Mapping[tuple[str, str], str | None],
    reached: Mapping[str, Sequence[tuple[str, str | None]]],
) -> tuple[ClusterState, ...]:
    """Every cluster after a run that stopped: rolled out (the new digests), FAILED (the apps it rolled out run
    the new digest, the one that failed and those after it keep what ran before), not started (what ran before).
    ``before``: (cluster, app) -> the digest before the run; ``reached``: a failed cluster -> the (app, digest)
    it rolled out before the failure."""
    found: list[ClusterState] = []
    failed = {t.name for t, _ in ran.failed}
    soaked = {t.name: results for t, results in ran.done if t.name in failed}  # unhealthy after the soak
    for target, results in ran.done:
        if target.name not in failed:
            found.append(ClusterState(str(target.name), target.wave, "rolled out", dict(results)))
    for target, error in ran.failed:
        name = str(target.name)
        new = dict(reached.get(name) or soaked.get(name) or ())
        failed_app = next((a for a in apps if a not in new), None)
        runs = {app: new.get(app, before.get((name, app))) for app in apps}
        detail = {app: "rolled out" for app in new}
        if failed_app is not None:
            digest = error.details.get("digest")
            detail[failed_app] = f"FAILED ({digest or 'the new digest'} did not roll out; the previous pods serve)"
            detail.update({app: "not started" for app in apps[apps.index(failed_app) + 1 :] if app not in new})
        else:
            detail = {app: f"unhealthy after the soak: {error.message.splitlines()[0]}" for app in apps}
        found.append(ClusterState(name, target.wave, "FAILED", runs, detail))
    for target in ran.not_started:
        name = str(target.name)
        found.append(ClusterState(name, target.wave, "not started", {app: before.get((name, app)) for app in apps}))
    return tuple(sorted(found, key=lambda s: (s.wave, s.cluster)))


def stopped(env: str, ran: WaveRun[Any], states: Sequence[ClusterState], hint: str) -> DeployctlError:
    """The first failure of a run that stopped (its class keeps the exit code), saying which cluster it was and
    then what every cluster runs."""
    target, first = ran.failed[0]
    later = sorted({t.wave for t in ran.not_started})
    stop = f"; wave {', '.join(map(str, later))} not started" if later else ""
    lines = [f"{env} now (cluster, wave: what its pods serve):", *(s.line() for s in states)]
    first.message = f"{env}: cluster {target.describe()} failed{stop}: {first.message}\n" + "\n".join(lines)
    first.hint = f"{hint}; the later waves were not touched: the fixed release rolls out to every wave in order"
    first.details = {**first.details, "clusters": {s.cluster: s.data() for s in states}}
    first.args = (first.message,)
    return first
