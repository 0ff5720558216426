"""An environment's rollout on every cluster, wave by wave."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta

from deployctl.app.context import EnvContext
from deployctl.app.steps.serving import RECHECK_PAUSE, roll_forward_hint, verify
from deployctl.core.errors import DeployctlError, OperationError
from deployctl.ledger import labels
from deployctl.ledger.entry import Entry
from deployctl.rollout import waves
from deployctl.rollout.cluster import ClusterClient
from deployctl.rollout.results import DeployResult, RolloutPlan
from deployctl.rollout.states import Health


def roll_out_waves(
    ctx: EnvContext,
    clusters: Mapping[str | None, ClusterClient],
    plans: Mapping[str | None, Sequence[RolloutPlan]],
    roll: Callable[[waves.Target, list[DeployResult]], None],
    *,
    action: str,
    settle_timeout: float,
) -> list[DeployResult]:
    """Lock held: ``roll`` (one cluster's apps in order, appending each result) wave by wave, the clusters of a wave
    in parallel; the first wave with a failed cluster stops the release, later waves untouched, and the error says
    which cluster failed and what every cluster runs. ``wave_soak_minutes`` between waves, then every release of
    the wave is verified again (unhealthy: recorded as a failed rollout, and the release stops; in progress, e.g.
    an autoscaler adding pods: watched until it completes, fails or ``settle_timeout`` passes). An environment
    with one cluster: ``roll`` runs as is and its error is its own."""
    targets = ctx.targets()
    reached: dict[str | None, list[DeployResult]] = {t.name: [] for t in targets}
    if not ctx.several:
        roll(targets[0], reached[targets[0].name])
        return reached[targets[0].name]
    apps = list(dict.fromkeys(p.app for found in plans.values() for p in found))
    pairs = [(t.name, a) for t in targets for a in apps]

    def known(newest: list[Entry]) -> bool:  # what each cluster ran: the newest succeeded rollouts, until all found
        return all(waves.previous(newest, a, name) is not None for name, a in pairs)

    succeeded = labels.of_apps(apps, actions=waves.ROLLOUTS, outcomes=["succeeded"])
    entries = ctx.read_ledger(question=succeeded, answered=known).entries
    before = {(str(name), a): waves.previous(entries, a, name) for name, a in pairs}

    def one(target: waves.Target) -> Sequence[tuple[str, str | None]]:
        roll(target, reached[target.name])
        return [(r.app, r.image.digest) for r in reached[target.name]]

    def after_soak(target: waves.Target) -> DeployctlError | None:
        for plan in plans[target.name]:
            health = _settled(ctx, clusters[target.name], plan, timeout=settle_timeout)
            if not health.healthy:
                message = f"{plan.app} in {ctx.name} is not healthy after the wave soak: {health.summary}"
                entry = Entry(ctx.name, plan.app, action, "failed", digest=plan.image.digest, cluster=target.name)
                ctx.record(replace(entry, verdict="failed", tag=plan.image.tag, message=message))
                return OperationError(message, details={"digest": plan.image.digest})
        return None

    ran = waves.run(
        waves.waves(targets),
        one,
        soak=timedelta(minutes=ctx.env.wave_soak_minutes),
        after_soak=after_soak,
        say=ctx.reporter.progress,
    )
    if not ran.ok:
        done = {str(name): [(r.app, r.image.digest) for r in results] for name, results in reached.items()}
        states = waves.fleet(ran, apps, before, done)
        raise waves.stopped(ctx.name, ran, states, roll_forward_hint(ctx.name, ctx.env.promote_from is not None))
    return [r for t in targets for r in reached[t.name]]


def _settled(ctx: EnvContext, cluster: ClusterClient, plan: RolloutPlan, *, timeout: float) -> Health:
    """``plan``'s release judged after its wave's soak. A rollout in progress then (an autoscaler adding pods, a
    controller replacing one) is not a failure: it is watched until it completes, fails or ``timeout`` passes, and
    judged again, as a rollout's own check is (``steps.rollout``)."""
    health = verify(cluster, plan.release, plan.image.digest)
    deadline = time.monotonic() + timeout
    while health.rolling and time.monotonic() < deadline:
        with ctx.reporter.phase(f"watching {plan.release}, in progress after the wave soak"):
            verdict = cluster.watch_release(
                cluster.release_manifest(plan.release),
                timeout=max(1.0, deadline - time.monotonic()),
                on_progress=lambda line: ctx.reporter.progress(f"  {line}"),
            )
        if verdict.state != "complete":  # failed while watched: its verdict (with the diagnosis) is the reason
            return Health(False, (verdict.summary,))
        health = verify(cluster, plan.release, plan.image.digest)
        if health.rolling:
            time.sleep(RECHECK_PAUSE)
    return health
