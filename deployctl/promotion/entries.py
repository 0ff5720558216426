"""Pure pieces of ``deployctl promote`` (``app.promote``): which environment a request targets and its release
tag, how an image moves, a no-op's result, the ledger entry each app's promotion writes, and the webhook event
that announces the outcome."""

from __future__ import annotations

from deployctl.adapters import registry
from deployctl.config import Environment, LoadedConfig
from deployctl.core.errors import UsageError
from deployctl.core.refs import InvalidValueError, ReleaseTag
from deployctl.ledger.entry import Entry, Override
from deployctl.promotion import gates as promotion
from deployctl.promotion.facts import Facts
from deployctl.promotion.plan import AppPromotion, PromoteResult, PromotionPlan, PromotionStep
from deployctl.promotion.request import PromoteRequest


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


def transfer_mode(facts: Facts, source: registry.Endpoint, target: registry.Endpoint) -> str:
    if facts.skipped:
        return "skipped"
    return "noop" if facts.target_tag_digest == facts.source_digest else registry.transfer_mode(source, target)


def noop(plan: PromotionPlan) -> PromoteResult:
    deployed = all(a.facts.deploy for a in plan.apps)
    said = "already runs there (healthy now)" if deployed else "already moved and recorded there (not deployed)"
    step = PromotionStep("promote", "noop", f"{plan.release} {said}")
    return PromoteResult(plan, dry_run=False, outcome="noop", steps=(step,))


def entry(request: PromoteRequest, plan: PromotionPlan, app: AppPromotion, freeze: Override | None) -> Entry:
    """The app's ledger entry (completed by its rollout): the overrides its gates used, and the freeze's."""
    used = tuple(o for o in request.overrides() if promotion.used(o.flag, app.gates))
    return Entry(
        env=plan.target_env,
        app=app.app,
        action="promote",
        outcome="started",  # a template: each write says its outcome
        digest=app.facts.source_digest,
        tag=plan.release.tag,
        commit=plan.commit,
        release=plan.release.tag,
        source_env=plan.source_env,
        overrides=used + ((freeze,) if freeze else ()),
    )
