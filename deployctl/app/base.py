"""Steps shared by use cases: roll an image out (lock held), in every cluster wave by wave (``roll_out_waves``),
recover a release left pending, drift; the change window check (``require_window``; webhooks:
``EnvContext.announce``).

``deploy`` takes the environment lock and calls ``roll_out``; ``promote`` calls it under the
target's lock after moving the image. Nothing here takes a lock itself.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from deployctl import chartvalues, drift, image_check, notify, waves, windows
from deployctl.app.context import EnvContext
from deployctl.app.steps import redeploy, verification
from deployctl.cluster import Cluster
from deployctl.errors import DeployctlError, OperationError, PolicyError, UsageError
from deployctl.helm import Release
from deployctl.history import Entry, Override, open_intents
from deployctl.model import ImageRef
from deployctl.rollout import Health, release_health, what_serves
from deployctl.rollouts import ClustersDiff, DeployResult, RolloutPlan


def plan_rollout(
    ctx: EnvContext, cluster: Cluster, app_name: str, image: ImageRef, git_sha: str | None, workdir: Path
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


def roll_out(
    ctx: EnvContext, cluster: Cluster, plan: RolloutPlan, entry: Entry, *, timeout: float, wave: int = 1
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
        with ctx.reporter.phase(f"watching the rollout of {plan.release}"):
            verdict = cluster.watch_release(
                release.manifest,
                timeout=max(1.0, timeout - (time.monotonic() - started)),
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
    return DeployResult(
        env=ctx.name,
        app=plan.app,
        release=plan.release,
        namespace=cluster.namespace,
        image=plan.image,
        git_sha=plan.git_sha,
        revision=release.revision,
        helm_version=cluster.helm_major,
        outcome="succeeded",
        message=message,
        duration_seconds=time.monotonic() - started,
        recovered=recovered,
        command=entry.action,
        cluster=where,
        wave=wave,
        other_images=plan.other_images,
        verification=verified,
    )


def reconcile(
    ctx: EnvContext, cluster: Cluster, app_name: str, release: str, where: str | None = None
) -> tuple[str, ...]:
    """Complete the intents an interrupted run left open (lock held: no other run is mid-rollout), from helm's
    history: a revision whose description names the intent reached the cluster, but its rollout was never
    judged (``unknown``); no such revision means nothing did (``interrupted``). Never missing from the ledger."""
    pending = open_intents(ctx.read_ledger().entries, app_name, where)  # ``where``: this cluster's intents only
    if not pending:
        return ()
    revisions = cluster.history(release)
    settled = []
    for intent in pending:
        revision = next((r for r in revisions if f"(intent {intent.id})" in r.description), None)
        if intent.action == "verify":  # ``deployctl verify`` changes nothing in the cluster: never judged, never passed
            outcome, message = "unknown", "the verification stopped before its checks were judged"
        elif revision is None:
            outcome, message = "interrupted", "the run stopped before helm changed anything"
        else:
            outcome = "unknown"
            message = f"helm revision {revision.revision} ({revision.status}) was made; its rollout was never judged"
        ctx.reporter.warn(f"an earlier {intent.action} of {intent.digest} ({intent.time}) did not finish: {message}")
        ctx.record(
            intent.written_now(
                outcome=outcome,
                intent=intent.id,
                release=intent.release or (f"{release}@{revision.revision}" if revision else None),
                message=f"settled by a later run: {message}",
            )
        )
        settled.append(f"{intent.action} {intent.id}: {outcome}")
    return tuple(settled)


def verify(cluster: Cluster, release: str, digest: str | None, upgraded: Release | None = None) -> Health:
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


def serving_now(cluster: Cluster, release: str, failing: str | None, upgraded: Release | None = None) -> str | None:
    """What serves ``release`` now, read from its pods; None when the cluster cannot say (the hint says so)."""
    try:
        live = cluster.live(release, upgraded)
    except DeployctlError:
        return None
    return what_serves([w.health for w in live.workloads], failing) if live is not None else "nothing (not installed)"


def _add_serving(exc: DeployctlError, cluster: Cluster, plan: RolloutPlan) -> None:
    """Say in a failed helm run's hint what serves now (a hook that failed stopped helm before it applied)."""
    serving = serving_now(cluster, plan.release, plan.image.digest)
    if serving is not None:
        exc.hint = f"{exc.hint.rstrip('.') + '. ' if exc.hint else ''}Now serving: {serving}"


def recover_pending(
    ctx: EnvContext, cluster: Cluster, app_name: str, current: Release | None, where: str | None = None
) -> tuple[str, ...]:
    """Make ``current`` (helm's lookup under the lock) deployable again when a killed run left it pending.

    Called only while holding the environment lock, which proves no other deployctl run is
    mid-operation. The pending revision's storage secret (``sh.helm.release.v1.<release>.v<N>``,
    labels owner=helm,status=pending-*) is deleted: helm then sees the last finished revision
    as current and the next upgrade proceeds. Nothing in the cluster is deleted or rolled back:
    the objects of the interrupted revision keep serving until the upgrade replaces them
    (helm adopts objects that carry its release annotations). ``helm rollback`` is not an option
    (policy: roll forward), and ``helm uninstall --keep-history`` for a pending install would
    delete the serving objects.
    """
    if current is None or not current.pending:
        return ()
    release = current.name
    records = cluster.pending_records(release)
    if not records:
        raise OperationError(
            f"release {release} is {current.status} at revision {current.revision}, but no pending release "
            f"secret was found in {cluster.namespace}",
            "helm may use a non-default storage driver (HELM_DRIVER); recover it by hand",
        )
    done = []
    for record in records:
        ctx.fence()  # a run that lost the lock must not remove the pending record of the run that took it
        cluster.delete_record(record)
        message = (
            f"release {release} revision {record.revision} was left {record.status} by an interrupted run; "
            f"removed its pending record {record.secret} (cluster objects untouched)"
        )
        ctx.reporter.warn(message)
        ctx.record(
            Entry(
                env=ctx.name,
                app=app_name,
                action="recover",
                outcome="succeeded",
                release=f"{release}@{record.revision}",
                message=message,
                cluster=where,
            )
        )
        done.append(f"{record.status} revision {record.revision}")
    return tuple(done)


def environment_drift(
    ctx: EnvContext,
    app: str | None = None,
    *,
    digest: str | None = None,
    candidates: Mapping[str, drift.Candidate] | None = None,
) -> drift.DiffResult:
    """Every app's chart (or one) against the live objects of ``ctx``'s cluster (of each of its clusters:
    ``ClustersDiff``); ``candidates`` (``plan``): the image a deploy would roll out per app, where it exists."""
    values = ctx.values
    values.require()
    apps = ctx.config.settings.apps
    found: list[tuple[str, int, drift.DiffResult]] = []
    with ctx.clusters() as clusters, tempfile.TemporaryDirectory(prefix="deployctl-diff-") as workdir:
        for target in ctx.targets():
            results = []
            for name, config in ctx.apps(app):
                section = values.section(name, apps)
                section_file = Path(workdir) / f"{name}-values.yaml"
                section_file.write_text(yaml.safe_dump(section, sort_keys=False))
                chart, version = ctx.chart(name, config)
                results.append(
                    drift.app_drift(
                        clusters[target.name],
                        name,
                        config,
                        chart=chart,
                        chart_version=version,
                        section=section,
                        section_file=section_file,
                        workdir=Path(workdir),
                        repository=ctx.image(config, target=target),
                        digest=digest,
                        candidate=(candidates or {}).get(name),
                    )
                )
            found.append((str(target.name), target.wave, drift.DiffResult(env=ctx.name, apps=tuple(results))))
    return found[0][2] if not ctx.several else ClustersDiff.of(ctx.name, found)


def roll_out_waves(
    ctx: EnvContext,
    clusters: Mapping[str | None, Cluster],
    plans: Mapping[str | None, Sequence[RolloutPlan]],
    roll: Callable[[waves.Target, list[DeployResult]], None],
    *,
    action: str,
) -> list[DeployResult]:
    """Lock held: ``roll`` (one cluster's apps in order, appending each result) wave by wave, the clusters of a wave
    in parallel; the first wave with a failed cluster stops the release, later waves untouched, and the error says
    which cluster failed and what every cluster runs. ``wave_soak_minutes`` between waves, then every release of
    the wave is verified again (unhealthy: recorded as a failed rollout, and the release stops). An environment
    with one cluster: ``roll`` runs as is and its error is its own."""
    targets = ctx.targets()
    reached: dict[str | None, list[DeployResult]] = {t.name: [] for t in targets}
    if not ctx.several:
        roll(targets[0], reached[targets[0].name])
        return reached[targets[0].name]
    entries = ctx.read_ledger().entries
    apps = list(dict.fromkeys(p.app for found in plans.values() for p in found))
    before = {(str(t.name), a): waves.previous(entries, a, t.name) for t in targets for a in apps}

    def one(target: waves.Target) -> Sequence[tuple[str, str | None]]:
        roll(target, reached[target.name])
        return [(r.app, r.image.digest) for r in reached[target.name]]

    def after_soak(target: waves.Target) -> DeployctlError | None:
        for plan in plans[target.name]:
            health = verify(clusters[target.name], plan.release, plan.image.digest)
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


OVERRIDE_FREEZE = "--override-freeze"


def require_window(
    ctx: EnvContext, action: str, override_reason: str | None, *, now: datetime | None = None
) -> Override | None:
    """Refuse ``action`` (promote, deploy, apply) into ``ctx``'s environment while one of its change windows
    (``environments.NAME.freeze``) is in force: exit 4, naming the window and when the freeze ends. With
    ``override_reason`` it proceeds: recorded in the ledger (an ``override`` entry), said on stderr and announced
    (``freeze-overridden``); the returned override goes on the command's own entries. None: no window in force."""
    try:
        found = windows.state(ctx.env.freeze, now or datetime.now(UTC))
    except windows.WindowError as exc:
        raise UsageError(f"environments.{ctx.name}.{exc}", "fix the window in the configuration") from None
    if not found.frozen:
        return None
    reason = (override_reason or "").strip()
    if not reason:
        raise PolicyError(
            f"{action} into {ctx.name} refused: {ctx.name} is {found.describe()}",
            f"wait until the freeze ends, or pass {OVERRIDE_FREEZE} --reason TEXT (recorded in the history)",
            details={"freeze": found.data()},
        )
    override = Override(OVERRIDE_FREEZE, reason)
    ctx.reporter.warn(f"{action} into {ctx.name} during a freeze ({found.describe()}): overridden: {reason}")
    names = ", ".join(repr(w.name) for w in found.active)
    if ctx.env.terraform is not None:  # the ledger lives in the state bucket; apply records nothing else there
        ends = found.until.isoformat() if found.until else "not within a year"
        message = f"{action} during the freeze {names} (ends {ends})"
        entry = Entry(env=ctx.name, app="*", action="override", outcome="succeeded", message=message)
        ctx.record(replace(entry, overrides=(override,)))
    ctx.announce(notify.Event("freeze-overridden", ctx.name, f"{action} into {ctx.name} during {names}", reason=reason))
    return override


def freeze_state(ctx: EnvContext) -> windows.FreezeState | None:
    """``ctx``'s change windows now, for what only reads (``status``, ``plan``): None, and a warning, when one
    of them cannot be (``require_window`` refuses the changes then)."""
    try:
        return windows.state(ctx.env.freeze, datetime.now(UTC))
    except windows.WindowError as exc:
        ctx.reporter.warn(f"environments.{ctx.name}.{exc}: fix the window in the configuration")
        return None
