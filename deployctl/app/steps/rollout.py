"""Roll an image out in one cluster (lock held): ``plan_rollout`` validates before the lock, ``roll_out`` recovers,
runs helm, watches, verifies and records.

``deploy`` takes the environment lock and calls ``roll_out``; ``promote`` calls it under the
target's lock after moving the image. Nothing here takes a lock itself. Every cluster wave by wave:
``cluster_waves``; a pending release: ``recovery``; the change window: ``freeze``; drift: ``drift``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from deployctl.adapters.helm import Release
from deployctl.app.context import EnvContext
from deployctl.app.steps import redeploy, verification
from deployctl.app.steps.recovery import reconcile, recover_pending
from deployctl.app.steps.serving import RECHECK_PAUSE, roll_forward_hint, rolled_out, serving_now, verify
from deployctl.core.errors import DeployctlError, OperationError, UsageError
from deployctl.core.refs import ImageRef
from deployctl.ledger.entry import Entry
from deployctl.release import chartvalues, image_check
from deployctl.rollout.cluster import ClusterClient
from deployctl.rollout.results import DeployResult, RolloutPlan


def plan_rollout(
    ctx: EnvContext, cluster: ClusterClient, app_name: str, image: ImageRef, git_sha: str | None, workdir: Path
) -> RolloutPlan:
    """Validate before anything changes (and before waiting for the lock): the chart exists and renders
    with the app's values section and its image pinned through ``image_values``, and its workloads run it
    (``image_check``); else exit 2. The two values files are written to ``workdir`` (the caller removes it)."""
    if image.digest is None:
        raise UsageError(f"{image}: a rollout needs a digest (resolve the tag first)")
    _, app = ctx.app(app_name)
    values = ctx.values
    values.require()
    chart, version = ctx.chart(app_name, app)
    section = workdir / f"{app_name}-values.yaml"
    section.write_text(yaml.safe_dump(values.section(app_name, ctx.config.settings.apps), sort_keys=False))
    pins = workdir / f"{app_name}-image.yaml"
    keys = chartvalues.image_values(app, image, git_sha)
    pins.write_text(yaml.safe_dump(chartvalues.nested(keys)))
    checks = verification.plan_for(ctx, app_name)  # a missing token variable refuses here, before the lock
    with ctx.reporter.phase(f"rendering the chart of {app_name}"):
        manifest = cluster.template(
            release=app.release, chart=chart, values_files=(section, pins), set_string={}, version=version
        )
    others = image_check.require(manifest, app_name, image.digest, keys, say=ctx.reporter.progress).sidecars()
    return RolloutPlan(app_name, app.release, chart, version, (section, pins), image, git_sha, manifest, others, checks)


def _watch(
    ctx: EnvContext,
    cluster: ClusterClient,
    plan: RolloutPlan,
    release: Release,
    complete: Callable[..., None],
    *,
    timeout: float,
) -> None:
    """Watch the workloads of ``release`` until all complete; a failure (or the timeout) is recorded through
    ``complete`` and raised with what serves now."""
    with ctx.reporter.phase(f"watching the rollout of {plan.release}"):
        verdict = cluster.watch_release(
            release.manifest,
            timeout=max(1.0, timeout),
            on_progress=lambda line: ctx.reporter.progress(f"  {line}"),
        )
    if verdict.state != "complete":
        complete(outcome="failed", verdict="failed", message=verdict.summary)  # the diagnosis: in the error
        serving = serving_now(cluster, plan.release, plan.image.digest, release)
        raise OperationError(
            f"rollout of {plan.app} to {ctx.name} failed: {verdict.message}",
            roll_forward_hint(ctx.name, ctx.env.promote_from is not None, serving),
            details={**verdict.details(), "revision": release.revision, "digest": plan.image.digest},
        )


def roll_out(
    ctx: EnvContext, cluster: ClusterClient, plan: RolloutPlan, entry: Entry, *, timeout: float, wave: int = 1
) -> DeployResult:
    """With ``ctx``'s lock held: settle what an interrupted run left (its open intent, its pending helm
    revision; a release that already runs exactly this is judged without helm: ``redeploy``), record the intent,
    ``helm upgrade --install``, watch every Deployment until it completes or fails, verify the release is healthy
    (helm ``deployed``, rollout complete, only the new digest serving), and record the outcome with its verdict,
    completing the intent.

    Raises OperationError (exit 1) when the rollout fails: nothing is rolled back, the old pods keep
    serving, and the fix is rolled forward.
    """
    started = time.monotonic()
    where = entry.cluster
    current = cluster.release(plan.release)  # one helm lookup serves both: recovering changes it, then unused
    recovered = reconcile(ctx, cluster, plan.app, plan.release, where) + recover_pending(
        ctx, cluster, plan.app, current, where
    )
    same = redeploy.unchanged(ctx, cluster, plan, entry, verify, started, recovered=recovered, current=current)
    if same is not None:
        return verification.after_unchanged(ctx, cluster, plan, replace(same, wave=wave))  # its checks run too
    intent = entry.written_now(outcome="started", message=f"helm upgrade of {plan.release} to {plan.image.digest}")
    ctx.record(intent)  # written ahead: a run that dies from here on leaves an intent the next run settles

    def complete(**changes: Any) -> None:
        ctx.record(entry.written_now(intent=intent.id, **changes))

    what = plan.image.tag or plan.image.digest
    release: Release | None = None  # the revision helm made: an interrupt from then on leaves it unjudged
    try:
        with ctx.reporter.phase(f"helm {cluster.helm_major} upgrade --install {plan.release} ({plan.image.pinned})"):
            ctx.fence()  # the lock is still this run's, right before helm changes the cluster
            try:
                release = cluster.upgrade(
                    release=plan.release,
                    chart=plan.chart,
                    values_files=plan.values_files,
                    set_string={},
                    description=f"deployctl {entry.action} {what} (intent {intent.id})",
                    version=plan.chart_version,
                )
            except DeployctlError as exc:
                complete(outcome="failed", verdict="failed", message=f"helm upgrade failed: {exc.message}")
                _add_serving(exc, cluster, plan)
                raise
        # A deploy names the helm revision it made; a promotion keeps its release tag (the version prod runs).
        if not entry.release:
            entry = replace(entry, release=f"{plan.release}@{release.revision}")
        _watch(ctx, cluster, plan, release, complete, timeout=timeout - (time.monotonic() - started))
        health = verify(cluster, plan.release, plan.image.digest, release)
        while health.rolling and time.monotonic() - started < timeout:
            # The check after a "complete" found a rollout in progress again (the controller moved on: a
            # StatefulSet replaced the pod it had just made, seen in a make test run): in progress is not failed,
            # so it is watched again until it completes, fails or runs out of time.
            time.sleep(RECHECK_PAUSE)
            _watch(ctx, cluster, plan, release, complete, timeout=timeout - (time.monotonic() - started))
            health = verify(cluster, plan.release, plan.image.digest, release)
    except KeyboardInterrupt:  # SIGINT, and SIGTERM (the CLI turns it into this)
        if release is None:
            complete(outcome="interrupted", message="interrupted while helm ran; not judged")
        else:  # it reached the cluster: what serves is not known (issue 25: `interrupted` only when nothing did)
            message = f"interrupted after helm made revision {release.revision}; its rollout was never judged"
            complete(outcome="unknown", message=message)
        raise
    if not health.healthy:
        complete(outcome="failed", verdict="failed", message=health.summary)
        serving = serving_now(cluster, plan.release, plan.image.digest, release)
        raise OperationError(
            f"{plan.app} in {ctx.name} is not healthy after the rollout: {health.summary}",
            roll_forward_hint(ctx.name, ctx.env.promote_from is not None, serving),
            details={"revision": release.revision, "digest": plan.image.digest, "reasons": list(health.reasons)},
        )
    verified = verification.verify_rollout(ctx, cluster, plan, release, complete, health.proof)  # completes the intent
    message = f"healthy: {health.proof}" + (f"; verified: {verified.summary()}" if verified.checks else "")
    return rolled_out(
        ctx,
        cluster,
        plan,
        started=started,
        revision=release.revision,
        outcome="succeeded",
        message=message,
        recovered=recovered,
        command=entry.action,
        cluster=where,
        wave=wave,
        verification=verified,
    )


def _add_serving(exc: DeployctlError, cluster: ClusterClient, plan: RolloutPlan) -> None:
    """Say in a failed helm run's hint what serves now (a hook that failed stopped helm before it applied)."""
    serving = serving_now(cluster, plan.release, plan.image.digest)
    if serving is not None:
        exc.hint = f"{exc.hint.rstrip('.') + '. ' if exc.hint else ''}Now serving: {serving}"
