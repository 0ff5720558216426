"""``deployctl promote release-X.Y.Z``: run in prod exactly the images main built for the tagged commit and that ran
healthy in dev, every app of the release at once.

Plan first, then act (kargo-style: the artifacts are digests, not tags):

1. parse the release tag against the target environment's pattern; tag -> commit (on main);
2. per app: the image built for that commit -> its digest; the evidence (the source's ledger: it rolled
   out healthy there, never failed after, ran the soak time); what the target runs; judge the gates;
3. the whole release is refused if any app fails a gate (every refusal at once, nothing changed);
   ``--dry-run`` stops after showing the plan, the values diff and the changelog;
4. under the target's lock, plan and judge again (only what holds under the lock counts), then move
   every image (in parallel: retag in one repository, or copy missing blobs and referrers, the tag
   moving last), record the digests in each app's section of the values file, and roll the apps out
   in ``needs`` levels, the apps of a level together (``levels``, ``base.roll_out``), stopping after the first
   level with a failure;
5. one ledger entry per app per promotion (the rollout's, with its verdict); the outcome announced.

Refused inside a change window of the target (``base.require_window``); ``--dry-run`` says so.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from deployctl.app.context import Contexts, EnvContext
from deployctl.app.steps import reverify
from deployctl.app.steps.cluster_waves import roll_out_waves
from deployctl.app.steps.freeze import require_window
from deployctl.app.steps.promotion_plan import plan
from deployctl.app.steps.release_record import move_images, push_values, record_values
from deployctl.app.steps.rollout import plan_rollout, roll_out
from deployctl.config import App
from deployctl.core.errors import DeployctlError, LockedError, PolicyError
from deployctl.core.refs import ImageRef
from deployctl.ledger.entry import Entry, Override
from deployctl.notify import events
from deployctl.promotion import entries as records
from deployctl.promotion.entries import parse_release, target_env_name
from deployctl.promotion.gates import refusal
from deployctl.promotion.gates import used as used_by
from deployctl.promotion.plan import (
    AppPromotion,
    PromoteResult,
    PromotionPlan,
    PromotionStep,
)
from deployctl.promotion.request import PromoteRequest
from deployctl.rollout import levels, waves
from deployctl.rollout.cluster import ClusterClient
from deployctl.rollout.results import DeployResult, RolloutPlan

__all__ = ["parse_release", "plan", "promote", "target_env_name"]
log = logging.getLogger(__name__)


def promote(contexts: Contexts, request: PromoteRequest, *, override_freeze: str | None = None) -> PromoteResult:
    """Plan and judge (a refusal or ``--dry-run`` stops here, having changed nothing), then take the target's
    lock and plan and judge again: the gates read shared state (ledgers, registry tags), and only what holds
    under the lock counts. A concurrent promotion of the same release finds it done: a no-op. Refused inside a
    change window of the target unless ``override_freeze`` (the reason) is given. The outcome is announced."""
    reverify.before_promotion(contexts, request.to_env, request.app, dry_run=request.dry_run)  # a fresh check
    first = plan(contexts, request)[0]
    target, freeze = contexts[first.target_env], None
    try:
        problem = refusal(first.gates)
        if problem is not None:
            raise problem  # a refusal changes nothing: no registry, values file, ledger or cluster
        if request.dry_run:
            return PromoteResult(first, dry_run=True, outcome="planned", steps=_freeze_step(target, override_freeze))
        if first.noop:
            return records.noop(first)
        freeze = require_window(target, "promote", override_freeze)
        result, freeze = _promote(contexts, request, first, freeze, override_freeze)
    except PolicyError as exc:  # a gate, the freeze, or what changed while waiting for the lock
        target.announce(events.promotion_event("promote-refused", first, os.environ, error=exc, freeze=freeze))
        raise
    except LockedError:
        raise  # another run holds the target: nothing was tried
    except DeployctlError as exc:
        target.announce(events.promotion_event("promote-failed", first, os.environ, error=exc, freeze=freeze))
        raise
    if result.outcome in ("succeeded", "moved"):
        used = tuple(o for o in request.overrides() if used_by(o.flag, result.plan.gates))  # recorded in the ledger
        event = events.promotion_event(
            "promote-succeeded", result.plan, os.environ, freeze=freeze, deployed=request.deploy, overrides=used
        )
        target.announce(event)
    return result


def _promote(
    contexts: Contexts,
    request: PromoteRequest,
    first: PromotionPlan,
    freeze: Override | None,
    override_freeze: str | None,
) -> tuple[PromoteResult, Override | None]:
    """Validate the charts before waiting for the lock (values they reject change nothing), then, the lock held,
    check the change windows again (one may have begun while this run waited) and promote."""
    target = contexts[first.target_env]
    command = f"deployctl promote {first.release}"
    apps = contexts.config.settings.apps
    with (
        target.clusters() if request.deploy else _no_clusters() as clusters,
        tempfile.TemporaryDirectory(prefix="deployctl-values-") as workdir,
    ):

        def rollouts(promoted: PromotionPlan) -> dict[str | None, dict[str, RolloutPlan]]:
            """Each cluster's rollouts of ``promoted``, its image pinned in the registry that cluster pulls from."""
            if clusters is None:
                return {}
            moving = [a for a in promoted.apps if not a.skipped and not a.noop]
            return {
                t.name: {
                    a.app: plan_rollout(
                        target, clusters[t.name], a.app, _pulled(target, apps[a.app], a, t), promoted.commit,
                        _dir(workdir, t),
                    )
                    for a in moving
                }
                for t in target.targets()
            }  # fmt: skip

        planned = rollouts(first)
        with target.locked(command, request.lock_timeout):
            freeze = freeze or require_window(target, "promote", override_freeze)
            return _promote_locked(contexts, request, clusters, planned, rollouts, freeze), freeze


@contextmanager
def _no_clusters() -> Iterator[None]:
    yield None


def _freeze_step(target: EnvContext, override: str | None) -> tuple[PromotionStep, ...]:
    """A dry run is not refused during a freeze: it says the freeze would block the promotion."""
    try:
        require_window(target, "promote", None)  # without a reason: it refuses or says nothing; records nothing
    except PolicyError as exc:
        detail = exc.message + (f" (overridden: {override})" if override else f"; {exc.hint}")
        target.reporter.warn(f"the promotion would be {'overridden' if override else 'refused'}: {detail}")
        return (PromotionStep("freeze", "override" if override else "blocked", detail),)
    return ()


def _pulled(target: EnvContext, app: App, promoted: AppPromotion, where: waves.Target) -> ImageRef:
    return target.image(app, tag=promoted.target_image.tag, digest=promoted.target_image.digest, target=where)


def _dir(workdir: str, where: waves.Target) -> Path:
    path = Path(workdir) / (where.name or "")
    path.mkdir(exist_ok=True)
    return path


def _promote_locked(
    contexts: Contexts,
    request: PromoteRequest,
    clusters: dict[str | None, ClusterClient] | None,
    planned: dict[str | None, dict[str, RolloutPlan]],
    rollouts: Callable[[PromotionPlan], dict[str | None, dict[str, RolloutPlan]]],
    freeze: Override | None,
) -> PromoteResult:
    """The target's lock held: plan and judge again (what holds under the lock is what counts, and the rollouts use
    its digests), move the images, roll out, then record in the values file the apps that rolled out."""
    promotion_plan, endpoints, _ = plan(contexts, request)
    problem = refusal(promotion_plan.gates)
    if problem is not None:
        raise problem  # what changed while we waited for the lock (another promotion) refuses this one
    if promotion_plan.noop:
        return records.noop(promotion_plan)
    target = contexts[promotion_plan.target_env]
    moving = [a for a in promotion_plan.apps if not a.skipped and not a.noop]
    pinned = {t: {a: p.image.digest for a, p in found.items()} for t, found in planned.items()}
    if clusters is not None and any(found != {a.app: a.digest for a in moving} for found in pinned.values()):
        planned = rollouts(promotion_plan)  # the plan changed while this run waited: roll out the locked one
    entries = {a.app: records.entry(request, promotion_plan, a, freeze) for a in moving}
    try:
        steps, transfers = move_images(contexts, promotion_plan, moving, endpoints)
    except DeployctlError as exc:
        for entry in entries.values():
            _record_failure(target, entry, exc.message)
        raise
    if clusters is None:
        steps.append(PromotionStep("deploy", "skipped", "--no-deploy"))
        values_commit = _values(contexts, request, promotion_plan, moving, steps)
        for entry in entries.values():  # ``moved``: never what the target runs (``promotion.target_state``)
            target.record(entry.written_now(outcome="moved", message="image moved and recorded; not deployed"))
    else:
        rolled: dict[str, set[str | None]] = {}  # app -> the clusters where it rolled out
        try:
            _roll(contexts, request, promotion_plan, moving, entries, clusters, planned, steps, rolled)
        except BaseException:
            everywhere = [a for a in moving if rolled.get(a.app, set()) >= {t.name for t in target.targets()}]
            if everywhere:  # what rolled out is recorded; the values file is never ahead of what runs
                _values(contexts, request, promotion_plan, everywhere, steps, push=False)
            raise
        values_commit = _values(contexts, request, promotion_plan, moving, steps)
    return PromoteResult(
        promotion_plan,
        dry_run=False,
        outcome="succeeded" if clusters is not None else "moved",
        steps=tuple(steps),
        transfers=transfers,
        commit=values_commit,
    )


def _values(
    contexts: Contexts,
    request: PromoteRequest,
    promotion_plan: PromotionPlan,
    apps: Sequence[AppPromotion],
    steps: list[PromotionStep],
    *,
    push: bool = True,
) -> str | None:
    """Record ``apps`` in the values file (commit, push when asked), appending the steps; the values commit."""
    found, values_commit = record_values(contexts, request, promotion_plan, apps)
    steps.extend(found)
    if push and request.push and values_commit is not None:
        steps.append(push_values(contexts, promotion_plan))
    return values_commit


def _roll(
    contexts: Contexts,
    request: PromoteRequest,
    promotion_plan: PromotionPlan,
    moving: Sequence[AppPromotion],
    entries: dict[str, Entry],
    clusters: dict[str | None, ClusterClient],
    planned: dict[str | None, dict[str, RolloutPlan]],
    steps: list[PromotionStep],
    rolled: dict[str, set[str | None]],
) -> None:
    """Every moving app rolled out in every cluster, wave by wave, a ``needs`` level at a time; ``rolled`` says
    where each app rolled out (also when a later one failed)."""
    target = contexts[promotion_plan.target_env]
    timeout = request.rollout_seconds(target.env)
    needs = {a.app: contexts.config.settings.apps[a.app].needs for a in moving}

    def roll(where: waves.Target, done: list[DeployResult]) -> None:
        def one(app: str) -> DeployResult:
            entry = replace(entries[app], cluster=where.name)
            plan = planned[where.name][app]
            result = roll_out(target, clusters[where.name], plan, entry, timeout=timeout, wave=where.wave)
            rolled.setdefault(app, set()).add(where.name)
            return result

        ran = levels.run([a.app for a in moving], needs, one, say=target.reporter.progress)
        for _, result in ran.done:
            done.append(result)
            name = f"deploy {result.app}" + (f" in {where.name}" if where.name else "")
            steps.append(PromotionStep(name, "done", f"{result.message} ({result.duration_seconds:.1f}s)"))
        if not ran.ok:  # roll_out recorded each failure; the apps of later levels never started
            failed = ", ".join(app for app, _ in ran.failed)
            for later in ran.not_started:
                _record_failure(target, replace(entries[later], cluster=where.name), f"not deployed: {failed} failed")
            # several clusters: the error says what every cluster runs
            raise ran.error(_promoted, listing=not target.several, later="not deployed (runs what it ran)")

    plans = {name: list(found.values()) for name, found in planned.items()}
    roll_out_waves(target, clusters, plans, roll, action="promote", settle_timeout=timeout)


def _promoted(result: DeployResult) -> str:
    return f"runs {result.image.digest} (promoted)"


def _record_failure(target: EnvContext, entry: Entry, message: str) -> None:
    try:
        target.record(entry.written_now(outcome="failed", message=message))
    except DeployctlError as failure:  # the history must not hide the failure it records
        log.warning("could not record the failed promotion in the history of %s: %s", target.name, failure.message)
