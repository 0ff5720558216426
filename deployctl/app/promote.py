"""``deployctl promote release-X.Y.Z``: run in prod exactly the image that was built on main and ran healthy in dev.

Plan first, then act (kargo-style: the artifact is the digest, not a tag):

1. parse the release tag against the target environment's pattern;
2. resolve tag -> commit (on main) -> the image built for that commit -> its digest;
3. gather the evidence (the source's ledger: the digest rolled out healthy there, never failed after,
   ran for the soak time) and the changelog, judge the gates (``promotion.judge``; all refusals at
   once) and show the plan (``--dry-run`` stops here; a refusal changes nothing);
4. under the target environment's lock: retag (same repository: manifests only) or copy (other
   registry: missing blobs only), the tag moving last; record tag and digest in the target's
   values file (round-trip YAML edit); roll out through ``base.roll_out`` (unless ``--no-deploy``);
5. append the outcome to the target environment's ledger (one entry per promotion).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from deployctl import git, promotion, registry
from deployctl.app.base import RolloutPlan, plan_rollout, roll_out
from deployctl.app.context import Contexts, EnvContext
from deployctl.changelog import LIMIT, Changelog, changelog
from deployctl.cluster import Cluster
from deployctl.config import Environment, LoadedConfig
from deployctl.errors import DeployctlError, UsageError
from deployctl.evidence import evidence_of
from deployctl.history import Entry
from deployctl.model import InvalidValueError, ReleaseTag, Version
from deployctl.promotion import (
    Facts,
    PromoteRequest,
    PromoteResult,
    PromotionPlan,
    PromotionStep,
    judge,
    refusal,
)
from deployctl.values import ImageValues, ValuesEdit

log = logging.getLogger(__name__)


def target_env_name(config: LoadedConfig, requested: str | None) -> str:
    envs = config.settings.environments
    if requested is not None:
        if requested not in envs:
            raise UsageError(f"unknown environment {requested!r}", f"known environments: {', '.join(envs)}")
        if envs[requested].promote_from is None:
            raise UsageError(
                f"environment {requested!r} is not a promotion target (it has no promote_from)",
                f"set [tool.deployctl.environments.{requested}] promote_from = 'dev'",
            )
        return requested
    targets = [name for name, env in envs.items() if env.promote_from is not None]
    if len(targets) != 1:
        raise UsageError(
            "no environment has promote_from set" if not targets else f"several promotion targets: {targets}",
            "pass --to ENV" if targets else "set promote_from on the production environment",
        )
    return targets[0]


def parse_release(tag: str, env_name: str, env: Environment) -> ReleaseTag:
    try:
        return ReleaseTag.parse(tag, env.release_tag_pattern, allow_prerelease=env.allow_prerelease)
    except InvalidValueError as exc:
        raise UsageError(str(exc), f"{env_name} releases are tagged {env.release_tag_pattern}") from None


def _target_state(
    entries: list[Entry], env: Environment, app: str, values_now: ImageValues
) -> tuple[Version | None, str | None, str]:
    """The version and digest the target runs: its ledger's last successful promotion, else the values file."""
    for entry in entries:
        if entry.app != app or entry.action != "promote" or entry.outcome not in ("succeeded", "noop"):
            continue
        try:
            release = ReleaseTag.parse(entry.release or "", env.release_tag_pattern, allow_prerelease=True)
        except InvalidValueError:
            continue  # not a promotion-level entry
        return release.version, entry.digest, "ledger"
    if values_now.tag:
        try:
            release = ReleaseTag.parse(values_now.tag, env.release_tag_pattern, allow_prerelease=True)
        except InvalidValueError:
            log.warning("values file tag %r is not a release tag; ignoring it", values_now.tag)
        else:
            return release.version, values_now.digest or None, "values"
    return None, None, "none"


def plan(
    contexts: Contexts, request: PromoteRequest
) -> tuple[PromotionPlan, registry.Endpoint, registry.Endpoint, ValuesEdit | None]:
    """Everything that will happen, found and judged before anything changes."""
    config = contexts.config
    target_name = target_env_name(config, request.to_env)
    target = contexts[target_name]
    source = contexts[str(target.env.promote_from)]
    release = parse_release(request.tag, target_name, target.env)
    if (request.skip_dev_check or request.allow_downgrade) and not (request.reason or "").strip():
        flags = " and ".join(o.flag for o in request.overrides())
        raise UsageError(f"{flags} needs --reason TEXT", "the reason is recorded in the environment's history")
    app_name, app = target.app(request.app)
    values = target.values

    runner = contexts.runner
    commit = git.tag_commit(runner, config.root, release.tag)
    main_ref = git.main_ref(runner, config.root, config.settings.main_branch)
    on_main = git.is_ancestor(runner, config.root, commit, main_ref)

    source_repo = source.image(app)
    target_repo = target.image(app)
    source_endpoint = source.endpoint(source_repo)
    target_endpoint = target.endpoint(target_repo)
    source_digest = source_endpoint.resolve(commit)
    target_tag_digest = target_endpoint.resolve(release.tag)

    values_now = values.image()
    target_entries = target.ledger.entries()
    source_entries = source.ledger.entries()
    target_version, target_digest, target_from = _target_state(target_entries, target.env, app_name, values_now)
    evidence = (
        evidence_of(source_entries, env=source.name, app=app_name, digest=source_digest, now=datetime.now(UTC))
        if source_digest
        else None
    )
    facts = Facts(
        release=release,
        commit=commit,
        on_main=on_main,
        main_ref=main_ref,
        source_env=source.name,
        target_env=target_name,
        source_image=replace(source_repo, tag=commit),
        source_digest=source_digest,
        evidence=evidence,
        target_version=target_version,
        target_digest=target_digest,
        target_from=target_from,
        target_tag_digest=target_tag_digest,
        soak=timedelta(minutes=target.env.promote_soak_minutes),
    )
    gates = judge(facts, skip_dev_check=request.skip_dev_check, allow_downgrade=request.allow_downgrade)
    edit = values.edit_image(tag=release.tag, digest=source_digest) if source_digest else None
    # Done means done in the environment (the release tag names the digest, the target's ledger records it
    # promoted), whatever this checkout's values file says: a concurrent run may have done it from another.
    noop = source_digest is not None and target_tag_digest == source_digest and target_digest == source_digest
    transfer = (
        "noop" if target_tag_digest == source_digest else registry.transfer_mode(source_endpoint, target_endpoint)
    )
    target_image = replace(target_repo, tag=release.tag, digest=source_digest)
    helm = (
        "nothing (already running)"
        if noop
        else f"not deployed (--no-deploy): run `deployctl deploy {target_name}` later"
        if not request.deploy
        else f"helm upgrade --install {app.release} {app.chart} -n {target.env.namespace or 'default'} "
        f"-f {target.env.values} (image {target_image.name}@{source_digest}, git sha {commit[:12]})"
    )
    promotion_plan = PromotionPlan(
        app=app_name,
        facts=facts,
        gates=gates,
        target_image=target_image,
        transfer=transfer,
        values_path=values.path,
        values_diff=edit.diff if edit else "",
        helm=helm,
        noop=noop,
        changelog=_changelog(contexts, target_entries, source_entries, app_name, commit),
    )
    return promotion_plan, source_endpoint, target_endpoint, edit


def _changelog(
    contexts: Contexts, target_entries: list[Entry], source_entries: list[Entry], app: str, head: str
) -> Changelog:
    """The commits between the one the target runs (its last promotion, from its ledger) and ``head``."""
    runner, repo = contexts.runner, contexts.config.root
    base = next(
        (
            e.commit
            for e in target_entries
            if e.app == app and e.action == "promote" and e.outcome in ("succeeded", "noop") and e.commit
        ),
        None,
    )
    if base is not None and not git.contains(runner, repo, base):
        log.warning("the commit %s the target runs is not in this clone (fetch it): listing all commits", base[:12])
        base = None
    commits, total = git.log(runner, repo, base=base, head=head, limit=LIMIT)
    return changelog(commits, total, base=base, head=head, source_entries=source_entries, app=app)


def promote(contexts: Contexts, request: PromoteRequest) -> PromoteResult:
    """Plan and judge (a refusal or ``--dry-run`` stops here, having changed nothing), then take the target's
    lock and plan and judge again: the gates read shared state (ledgers, registry tags), and only what holds
    under the lock counts. A concurrent promotion of the same release finds it done: a no-op."""
    first = plan(contexts, request)[0]
    problem = refusal(first.gates)
    if problem is not None:
        raise problem  # a refusal changes nothing: no registry, values file, ledger or cluster
    if request.dry_run:
        return PromoteResult(first, dry_run=True, outcome="planned")
    if first.noop:
        return _noop(first)
    target = contexts[first.facts.target_env]
    command = f"deployctl promote {first.facts.release}"
    if not request.deploy:
        with target.locked(command, request.lock_timeout):
            return _promote_locked(contexts, request, None, None)
    with target.cluster() as cluster:
        # the chart is validated before waiting for the lock: values it rejects change nothing
        rollout = plan_rollout(target, cluster, first.app, first.target_image, first.facts.commit)
        with target.locked(command, request.lock_timeout):
            return _promote_locked(contexts, request, cluster, rollout)


def _noop(promotion_plan: PromotionPlan) -> PromoteResult:
    return PromoteResult(
        promotion_plan,
        dry_run=False,
        outcome="noop",
        steps=(PromotionStep("promote", "noop", f"{promotion_plan.facts.release} already runs there"),),
    )


def _promote_locked(
    contexts: Contexts, request: PromoteRequest, cluster: Cluster | None, rollout: RolloutPlan | None
) -> PromoteResult:
    """The target's lock held: judge again, move the image, record it in the values file, roll out."""
    promotion_plan, source, endpoint, edit = plan(contexts, request)
    problem = refusal(promotion_plan.gates)
    if problem is not None:
        raise problem  # what changed while we waited for the lock (another promotion) refuses this one
    if promotion_plan.noop:
        return _noop(promotion_plan)
    facts = promotion_plan.facts
    target = contexts[facts.target_env]
    if facts.source_digest is None or edit is None:  # pragma: no cover - the image-built gate refused it
        raise AssertionError("a promotion without a digest passed the gates")
    entry = Entry(
        env=facts.target_env,
        app=promotion_plan.app,
        action="promote",
        outcome="",
        digest=facts.source_digest,
        tag=facts.release.tag,
        commit=facts.commit,
        release=facts.release.tag,
        source_env=facts.source_env,
        overrides=tuple(o for o in request.overrides() if promotion.used(o.flag, promotion_plan.gates)),
    )
    try:
        steps, transfer, values_commit = _move_image(contexts, request, promotion_plan, source, endpoint, edit)
    except DeployctlError as exc:
        _record_failure(target, entry, exc)
        raise
    if cluster is None or rollout is None:
        steps.append(PromotionStep("deploy", "skipped", "--no-deploy"))
        target.record(entry.written_now(outcome="succeeded", message="; ".join(f"{s.name} {s.status}" for s in steps)))
    else:
        result = roll_out(target, cluster, rollout, entry, timeout=request.rollout_timeout)  # records its outcome
        steps.append(PromotionStep("deploy", "done", f"{result.message} ({result.duration_seconds:.1f}s)"))
    return PromoteResult(
        promotion_plan, dry_run=False, outcome="succeeded", steps=tuple(steps), transfer=transfer, commit=values_commit
    )


def _record_failure(target: EnvContext, entry: Entry, exc: DeployctlError) -> None:
    try:
        target.record(entry.written_now(outcome="failed", message=exc.message))
    except DeployctlError as failure:  # the history must not hide the failure it records
        log.warning("could not record the failed promotion in the history of %s: %s", target.name, failure.message)


def _move_image(
    contexts: Contexts,
    request: PromoteRequest,
    promotion_plan: PromotionPlan,
    source: registry.Endpoint,
    target_endpoint: registry.Endpoint,
    edit: ValuesEdit,
) -> tuple[list[PromotionStep], registry.TransferReport, str | None]:
    """Lock held: the image under the release tag in the target registry, then the values file (and commit)."""
    facts = promotion_plan.facts
    digest = promotion_plan.digest
    reporter = contexts.reporter
    steps: list[PromotionStep] = []
    values_commit: str | None = None
    with reporter.phase(f"image {promotion_plan.transfer} -> {promotion_plan.target_image.name}:{facts.release}"):
        transfer = registry.promote_image(
            source, target_endpoint, digest, facts.release.tag, progress=lambda line: log.info("%s", line)
        )
    steps.append(PromotionStep("image", "noop" if transfer.mode == "noop" else "done", _transfer_detail(transfer)))
    if edit.changed:
        edit.write()
        steps.append(PromotionStep("values", "done", f"{edit.path.name}: image.tag={facts.release}, digest={digest}"))
        if request.commit:
            values_commit = git.commit(
                contexts.runner,
                contexts.config.root,
                [edit.path],
                f"chore(release): promote {facts.release} to {facts.target_env} ({digest})",
            )
            steps.append(PromotionStep("commit", "done", values_commit[:12]))
    else:
        steps.append(PromotionStep("values", "noop", f"{edit.path.name} already records {digest}"))
    return steps, transfer, values_commit


def _transfer_detail(report: registry.TransferReport) -> str:
    if report.mode == "copy":
        return (
            f"copy: {report.blobs_copied} blobs copied ({report.bytes_copied} bytes), {report.blobs_mounted} mounted, "
            f"{report.blobs_present} already there, {report.manifests_put} manifests, "
            f"{len(report.referrers)} referrers ({report.referrers_copied} copied), {report.seconds:.2f}s"
        )
    return f"{report.mode}: {report.manifests_put} manifest(s), {report.seconds:.2f}s"
