"""A rollout of what a release already runs: no helm revision, the release judged as it is (``unchanged``).

``base.roll_out`` calls ``unchanged`` under the lock, before it writes its intent: when the release is
``deployed`` from the same chart with exactly the values and objects this rollout would give helm, and the live
objects are what the chart says (no drift to restore), helm is not run (an upgrade would change nothing but
re-run the hooks). The release is judged now: healthy, the
rollout succeeds as ``unchanged``; not healthy, it fails (exit 1): redeploying the same thing does not fix it.
A deploy records ``outcome="unchanged"`` (not a new rollout: it neither starts a soak nor moves ``deployed at``);
a promotion records its success as usual (its image was moved and recorded), the message saying unchanged.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import yaml

from deployctl.adapters.helm import Release
from deployctl.app.context import EnvContext
from deployctl.app.steps.serving import rolled_out
from deployctl.core.errors import DeployctlError, OperationError
from deployctl.ledger.entry import Entry
from deployctl.release import manifest_diff
from deployctl.rollout import unchanged as sameness
from deployctl.rollout.cluster import ClusterClient
from deployctl.rollout.results import DeployResult, RolloutPlan
from deployctl.rollout.states import Health

log = logging.getLogger(__name__)
Verify = Callable[[ClusterClient, str, str | None], Health]


def unchanged(
    ctx: EnvContext,
    cluster: ClusterClient,
    plan: RolloutPlan,
    entry: Entry,
    verify: Verify,
    started: float,
    *,
    recovered: tuple[str, ...] = (),
    current: Release | None,
) -> DeployResult | None:
    """The result of a rollout that changes nothing (recorded), or None when helm must run. Lock held.
    ``recovered``: what this run settled of an interrupted one, which may be half applied: a new revision settles it.
    ``current``: the release as helm reports it now (the caller's lookup, made under the lock)."""
    if recovered:
        return None
    if current is None:
        return None
    manifest = functools.cache(lambda: cluster.release_manifest(plan.release))

    def drifted() -> list[str]:
        try:
            found = manifest_diff.compare(plan.manifest, manifest(), cluster.namespace, cluster.reader().get)
        except DeployctlError as exc:  # an object that cannot be read: let helm apply it
            return [f"unreadable: {exc.message.splitlines()[0]}"]
        return [o.ref for o in found if o.change != "unchanged"]

    why = sameness.difference(
        status=current.status,
        chart=current.chart,
        planned_chart=chart_ref(plan),
        values=lambda: cluster.release_values(plan.release),
        planned_values=sameness.merged([yaml.safe_load(Path(f).read_text()) for f in plan.values_files]),
        manifest=manifest,
        planned_manifest=plan.manifest,
        drifted=drifted,
    )
    if why is not None:
        log.info("%s: a new revision of %s: %s", plan.app, plan.release, why)
        return None
    digest = plan.image.digest
    health = verify(cluster, plan.release, digest)
    said = f"unchanged: {plan.app} already runs {digest} (revision {current.revision})"
    entry = replace(entry, release=entry.release or f"{plan.release}@{current.revision}")
    promotion = entry.action == "promote"  # the promotion itself happened: its image moved and was recorded
    if not health.healthy:
        unhealthy = f"{said}, not healthy: {health.summary}"
        ctx.record(entry.written_now(outcome="unchanged", verdict="failed", message=unhealthy))
        raise OperationError(
            f"{said} in {ctx.name}, no helm revision made, but it is not healthy: {health.summary}",
            _hint(ctx),
            details={"revision": current.revision, "digest": digest, "reasons": list(health.reasons)},
        )
    message = f"{said}, healthy: {health.proof}"
    ctx.record(entry.written_now(outcome="succeeded" if promotion else "unchanged", verdict="healthy", message=message))
    return rolled_out(
        ctx,
        cluster,
        plan,
        started=started,
        revision=current.revision,
        outcome="unchanged",
        message=message,
        command=entry.action,
        cluster=entry.cluster,
    )


def _hint(ctx: EnvContext) -> str:
    how = (
        "promote a new release (`deployctl promote release-X.Y.Z`)"
        if ctx.env.promote_from is not None
        else f"`deployctl deploy {ctx.name}` with the new commit's image"
    )
    return (
        f"redeploying what runs changes nothing (helm was not run); `deployctl status {ctx.name}` says what is "
        f"wrong. Fix the cause and roll forward: {how}"
    )


def chart_ref(plan: RolloutPlan) -> str:
    """``NAME-VERSION`` of the chart the plan installs, as helm names a release's chart: from a local chart's
    Chart.yaml; an OCI chart is named by its reference's last part, at its pinned version."""
    if not plan.chart.startswith("oci://"):
        meta = yaml.safe_load((Path(plan.chart) / "Chart.yaml").read_text()) or {}
        return f"{meta.get('name', '')}-{meta.get('version', '')}"
    return f"{plan.chart.rstrip('/').rsplit('/', 1)[-1]}-{plan.chart_version}"
