"""A release's health after a rollout, what serves now, and the roll-forward hint a failure carries."""

from __future__ import annotations

import time
from typing import Any

from deployctl.adapters.helm import Release
from deployctl.app.context import EnvContext
from deployctl.core.errors import DeployctlError
from deployctl.rollout.cluster import ClusterClient
from deployctl.rollout.results import DeployResult, RolloutPlan
from deployctl.rollout.states import Health, release_health, what_serves

RECHECK_PAUSE = 0.25  # seconds between a check that found the rollout in progress again and the next watch


def verify(cluster: ClusterClient, release: str, digest: str | None, upgraded: Release | None = None) -> Health:
    """The release judged now, from the cluster (the one definition of healthy, see ``rollout``); ``upgraded``:
    the revision this run just made (its manifest names the workloads), else helm's latest."""
    live = cluster.live(release, upgraded)
    return live.health(digest) if live is not None else release_health(None, [], digest)


def roll_forward_hint(env_name: str, promoted: bool, serving: str | None = None) -> str:
    """What to do after a failed rollout; ``serving``: what serves now (``serving_now``), never assumed."""
    how = "promote a new release (`deployctl promote release-X.Y.Z`)" if promoted else f"`deployctl deploy {env_name}`"
    now = f"now serving: {serving}" if serving else f"see `deployctl status {env_name}` for what serves"
    return (
        f"nothing was rolled back ({now}). Roll forward: fix the cause, merge it, and {how} with the new commit's image"
    )


def serving_now(
    cluster: ClusterClient, release: str, failing: str | None, upgraded: Release | None = None
) -> str | None:
    """What serves ``release`` now, read from its pods; None when the cluster cannot say (the hint says so)."""
    try:
        live = cluster.live(release, upgraded)
    except DeployctlError:
        return None
    return what_serves([w.health for w in live.workloads], failing) if live is not None else "nothing (not installed)"


def rolled_out(
    ctx: EnvContext, client: ClusterClient, plan: RolloutPlan, /, *, started: float, **facts: Any
) -> DeployResult:
    """The result of ``plan``'s rollout through ``client``: what every result says, timed from ``started`` (a
    monotonic clock), with ``facts`` (revision, outcome, message, what ran and where: ``cluster``, ``wave``)."""
    return DeployResult(
        env=ctx.name,
        app=plan.app,
        release=plan.release,
        namespace=client.namespace,
        image=plan.image,
        git_sha=plan.git_sha,
        helm_version=client.helm_major,
        duration_seconds=time.monotonic() - started,
        other_images=plan.other_images,
        **facts,
    )
