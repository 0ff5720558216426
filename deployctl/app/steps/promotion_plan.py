"""A promotion planned and judged before anything changes: every app's facts found (registries, ledgers, the values
file, git) and the gates judged on them."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from functools import partial

from deployctl.adapters import git
from deployctl.app.context import Contexts
from deployctl.app.steps import verification
from deployctl.app.steps.release_record import Endpoints, values_edit
from deployctl.app.steps.source_health import source_live
from deployctl.config import deploy_order
from deployctl.core.errors import UsageError
from deployctl.ledger import labels
from deployctl.ledger.entry import Entry
from deployctl.promotion import entries as records
from deployctl.promotion.entries import parse_release, target_env_name
from deployctl.promotion.evidence import fleet_evidence
from deployctl.promotion.facts import Facts
from deployctl.promotion.gates import judge
from deployctl.promotion.plan import (
    AppPromotion,
    PromotionPlan,
    helm_summary,
    merged,
)
from deployctl.promotion.request import PromoteRequest
from deployctl.promotion.target import (
    ASKED_ACTIONS,
    ASKED_OUTCOMES,
    base_commit,
    recorded_state,
    settled,
    target_state,
)
from deployctl.release.changelog import LIMIT, Changelog, changelog
from deployctl.release.values import ValuesEdit
from deployctl.rollout import waves

log = logging.getLogger(__name__)


def plan(contexts: Contexts, request: PromoteRequest) -> tuple[PromotionPlan, Endpoints, ValuesEdit | None]:
    """Everything that will happen, found and judged before anything changes."""
    config = contexts.config
    target_name = target_env_name(config, request.to_env)
    target = contexts[target_name]
    source = contexts[str(target.env.promote_from)]
    release = parse_release(request.tag, target_name, target.env)
    if request.overrides() and not (request.reason or "").strip():
        flags = " and ".join(o.flag for o in request.overrides())
        raise UsageError(f"{flags} needs --reason TEXT", "the reason is recorded in the environment's history")
    apps = config.settings.apps
    names = [target.app(request.app)[0]] if request.app else deploy_order(apps)
    runner = contexts.runner
    commit = git.tag_commit(runner, config.root, release.tag)
    main_ref = git.main_ref(runner, config.root, config.settings.main_branch)
    on_main = git.is_ancestor(runner, config.root, commit, main_ref)
    tag_on_remote, tag_remote = git.tag_on_remote(runner, config.root, release.tag, commit)
    # each app's image built from the commit, then only the source's entries its evidence and changelog read
    source_digests = {name: source.endpoint(source.image(apps[name])).resolve(commit) for name in names}
    asked = [labels.since_digest(name, digest) for name, digest in source_digests.items() if digest]
    source_read = source.read_ledger(question=labels.either(labels.failures(names), *asked))  # the soak: S3's clock
    targets, first_wave = target.targets(), waves.first_wave(source.env)
    several = [t.name for t in targets if t.name]
    brought = labels.of_apps(names, actions=ASKED_ACTIONS, outcomes=ASKED_OUTCOMES)  # its newest, until settled
    target_read = target.read_ledger(question=brought, answered=partial(settled, apps=names, clusters=several))
    target_entries, source_entries, now = target_read.entries, source_read.entries, source_read.now
    evidence_in = partial(fleet_evidence, source_entries, env=source.name, now=now, first_wave=first_wave)
    planned: list[AppPromotion] = []
    endpoints: Endpoints = {}
    for name in names:
        app = apps[name]
        source_repo, target_repo = source.image(app), target.image(app)
        own = dict.fromkeys(target.image(app, target=t).registry for t in targets)  # clusters' own registries
        repos = [target_repo, *(replace(target_repo, registry=r) for r in own if r != target_repo.registry)]
        target_endpoints = [target.endpoint(r) for r in repos]
        endpoints[name] = (source.endpoint(source_repo), target_endpoints)
        source_digest = source_digests[name]
        live = source_live(source, app, source_digest) if source_digest else None
        version, current, current_from, behind = target_state(target_entries, target.env, name, several)
        recorded = recorded_state(target_entries, target.env, name)
        target_tag = target_endpoints[0].resolve(release.tag)
        # "already runs there" is said only when the target's cluster shows it, healthy, now
        proven = request.deploy and current == source_digest == target_tag and source_digest is not None
        here = source_live(target, app, source_digest) if proven and source_digest else None
        checks = verification.configured(config.settings, source.name, name)  # only a passed verification proves
        facts = Facts(
            release=release,
            commit=commit,
            on_main=on_main,
            main_ref=main_ref,
            source_env=source.name,
            target_env=target_name,
            source_image=replace(source_repo, tag=commit),
            source_digest=source_digest,
            evidence=evidence_in(app=name, digest=source_digest, checks=checks) if source_digest else None,
            target_version=version,
            target_digest=current,
            target_from=current_from,
            target_tag_digest=target_tag,
            soak=timedelta(minutes=target.env.promote_soak_minutes),
            app=name,
            optional=app.optional,
            tag_on_remote=tag_on_remote,
            tag_remote=tag_remote,
            behind=behind,
            regional_tags=tuple((e.host, e.resolve(release.tag)) for e in target_endpoints[1:]),
            live_runs=live.runs if live is not None else None,
            live_problems=live.problems if live is not None else (),
            live_elsewhere=live.elsewhere if live is not None else (),
            target_healthy=here.healthy if here is not None else None,
            recorded_version=recorded[0],
            recorded_digest=recorded[1],
            deploy=request.deploy,
            source_ledger=tuple(p.describe() for p in source_read.tampering),
            not_counted=source_read.not_counted(name, source_digest),
        )
        target_image = replace(target_repo, tag=release.tag, digest=source_digest)
        planned.append(
            AppPromotion(
                app=name,
                facts=facts,
                gates=judge(facts, **request.gate_overrides()),
                target_image=target_image,
                transfer=records.transfer_mode(facts, endpoints[name][0], target_endpoints[0]),
                helm=helm_summary(facts, request.deploy, target.name, str(target.env.namespace)),
            )
        )
    edit = values_edit(target, [a for a in planned if not a.skipped and not a.noop], commit)
    promotion_plan = PromotionPlan(
        release=release,
        commit=commit,
        source_env=source.name,
        target_env=target_name,
        apps=tuple(planned),
        values_path=target.values.path,
        values_diff=edit.diff if edit else "",
        changelog=_changelog(contexts, target_entries, source_entries, names, commit),
        clusters=tuple((str(t.name), t.wave) for t in targets if t.name),
    )
    return promotion_plan, endpoints, edit


def _changelog(
    contexts: Contexts, target_entries: list[Entry], source_entries: list[Entry], apps: list[str], head: str
) -> Changelog:
    """The commits between the one the target runs (its newest promotion, from its ledger) and ``head``."""
    runner, repo = contexts.runner, contexts.config.root
    base = base_commit(target_entries, apps)
    if base is not None and not git.contains(runner, repo, base):
        log.warning("the commit %s the target runs is not in this clone (fetch it): listing all commits", base[:12])
        base = None
    commits, total = git.log(runner, repo, base=base, head=head, limit=LIMIT)
    found = [changelog(commits, total, base=base, head=head, source_entries=source_entries, app=app) for app in apps]
    return found[0] if len(found) == 1 else merged(found)
