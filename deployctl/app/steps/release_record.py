"""A promotion's writes outside the cluster, under the target's lock: every image under the release tag in each
registry the target pulls from, then the values file (and its commit, and its push to main), for the apps that
rolled out only: a failed promotion never leaves the values file ahead of what runs."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from deployctl.adapters import git, registry
from deployctl.app.context import Contexts, EnvContext
from deployctl.core.errors import DeployctlError
from deployctl.promotion.plan import AppPromotion, PromotionPlan, PromotionStep, transfer_detail
from deployctl.promotion.request import PromoteRequest
from deployctl.release import chartvalues
from deployctl.release.values import KeyPath, ValuesEdit

log = logging.getLogger(__name__)

# app -> (source, [target, then each other registry of the target's clusters])
Endpoints = dict[str, tuple[registry.Endpoint, list[registry.Endpoint]]]


def values_changes(target: EnvContext, promoted: Sequence[AppPromotion], commit: str) -> dict[KeyPath, str]:
    """The values-file keys that pin each app's promoted image (its digest and release tag, through the app's
    ``image_values``), in the app's own section."""
    apps = target.config.settings.apps
    changes: dict[KeyPath, str] = {}
    for promotion in promoted:
        app = apps[promotion.app]
        if promotion.target_image.digest is None:
            continue
        prefix = target.values.section_path(promotion.app, apps)
        for key, value in chartvalues.image_values(app, promotion.target_image, commit).items():
            if any(p in app.image_values[key] for p in ("{digest}", "{tag}")):
                changes[(*prefix, *key.split("."))] = value
    return changes


def values_edit(target: EnvContext, promoted: Sequence[AppPromotion], commit: str) -> ValuesEdit | None:
    changes = values_changes(target, promoted, commit)
    return target.values.edit(changes) if changes else None


def move_images(
    contexts: Contexts, plan: PromotionPlan, moving: Sequence[AppPromotion], endpoints: Endpoints
) -> tuple[list[PromotionStep], tuple[registry.TransferReport, ...]]:
    """Every image under the release tag in every registry the target's clusters pull from (in parallel: the
    target's, then each cluster's own: missing blobs only). Each tag write is fenced by the target's lock."""
    tag, fence = plan.release.tag, contexts[plan.target_env].fence  # fence: right before each tag write
    pairs = [(a, i, e) for a in moving for i, e in enumerate(endpoints[a.app][1])]

    def move(pair: tuple[AppPromotion, int, registry.Endpoint]) -> registry.TransferReport:
        (app, _, target), say = pair, lambda line: log.info("%s", line)
        return registry.promote_image(endpoints[app.app][0], target, app.digest, tag, progress=say, before_tag=fence)

    with (
        contexts.reporter.phase(f"images -> :{tag} ({', '.join(a.app for a in moving)})"),
        ThreadPoolExecutor(max_workers=max(1, len(pairs)), thread_name_prefix="promote") as pool,
    ):
        transfers = tuple(pool.map(move, pairs))
    steps = [
        PromotionStep(
            f"image {a.app}" + (f" -> {e.host}" if i else ""),
            "noop" if t.mode == "noop" else "done",
            transfer_detail(t),
        )
        for (a, i, e), t in zip(pairs, transfers, strict=True)
    ]
    return steps, transfers


def record_values(
    contexts: Contexts, request: PromoteRequest, plan: PromotionPlan, rolled_out: Sequence[AppPromotion]
) -> tuple[list[PromotionStep], str | None]:
    """The values file records the apps that ``rolled_out`` (or, ``--no-deploy``, were moved), committed when asked;
    returns the steps and the values commit."""
    target = contexts[plan.target_env]
    edit = values_edit(target, rolled_out, plan.commit)
    tag = plan.release.tag
    if edit is None or not edit.changed:
        return [PromotionStep("values", "noop", "the values file already records these digests")], None
    target.fence()  # the lock is still this run's, right before the values file changes
    edit.write()
    steps = [PromotionStep("values", "done", f"{edit.path.name}: {', '.join(a.app for a in rolled_out)} at {tag}")]
    values_commit: str | None = None
    if request.commit or request.push:
        digests = ", ".join(f"{a.app} {a.digest}" for a in rolled_out)
        message = f"chore(release): promote {tag} to {plan.target_env} ({digests})"
        values_commit = git.commit(contexts.runner, contexts.config.root, [edit.path], message)
        steps.append(PromotionStep("commit", "done", values_commit[:12]))
    return steps, values_commit


def push_values(contexts: Contexts, plan: PromotionPlan) -> PromotionStep:
    """Make the values record durable beside the ledger: push the commit to main (rebasing when main moved).
    Done last: the ledger already records the promotion, so a failed push fails the command without undoing it."""
    branch = contexts.config.settings.main_branch
    try:
        pushed = git.push(contexts.runner, contexts.config.root, remote="origin", branch=branch)
    except DeployctlError as exc:
        raise DeployctlError(
            f"{plan.release} was promoted and recorded in the history of {plan.target_env}, but "
            f"its values commit was not pushed to {branch}: {exc.message.splitlines()[0]}",
            exc.hint,
        ) from None
    return PromotionStep("push", "done", f"{pushed[:12]} -> origin/{branch}")
