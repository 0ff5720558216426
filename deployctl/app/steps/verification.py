"""Verification as the use cases run it: an app's checks in an environment (resolved before the lock, so a missing
token variable refuses before anything changes), run against its release with the environment's cluster, and
what the ledger records of them (``Entry.verified`` and ``Entry.checks``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from deployctl.adapters.helm import Release
from deployctl.app.context import EnvContext
from deployctl.config import DeployctlConfig
from deployctl.core.errors import UsageError
from deployctl.ledger.entry import Entry
from deployctl.rollout.cluster import ClusterClient
from deployctl.rollout.results import DeployResult, RolloutPlan
from deployctl.verification.metrics import MetricsApi
from deployctl.verification.model import FAILED, Subject, Verification
from deployctl.verification.plan import Plan
from deployctl.verification.run import run


def configured(config: DeployctlConfig, env: str, app: str) -> bool:
    """Whether ``app`` has checks to run in ``env`` (the gate: its evidence must then include a passed run)."""
    found = config.apps.get(app)
    return found is not None and Plan.of(found.verify.resolved(env), None).configured


def plan_for(ctx: EnvContext, app_name: str, environ: Mapping[str, str] | None = None) -> Plan:
    """``app_name``'s checks in ``ctx``'s environment; the metrics API's token read from its variable (registered
    as a secret: never printed). A missing variable is a usage error naming the check (exit 2)."""
    _, app = ctx.app(app_name)
    checks = app.verify.resolved(ctx.name)
    metrics = ctx.env.metrics
    api = None
    if checks.metrics and metrics is not None:
        token = None
        if metrics.token_env is not None:
            token = (environ if environ is not None else os.environ).get(metrics.token_env) or None
            if token is None:
                raise UsageError(
                    f"verification of {app_name} in {ctx.name}: metric check {checks.metrics[0].name!r} needs the "
                    f"metrics API token, but the variable {metrics.token_env} "
                    f"(environments.{ctx.name}.metrics.token_env) is not set",
                    f"export {metrics.token_env} (a CI secret), then re-run",
                )
            ctx.runner.redactor.add(token)
        api = MetricsApi(metrics.url, token, f"environments.{ctx.name}.metrics")
    return Plan.of(checks, api)


def run_checks(
    ctx: EnvContext, cluster: ClusterClient, plan: Plan, app_name: str, revision: Release, digest: str | None
) -> Verification:
    """Run ``plan`` against ``app_name``'s release ``revision`` in ``cluster`` (the lock held by the caller)."""
    subject = Subject(ctx.name, app_name, revision.name, cluster.namespace, digest)
    if not plan.configured:
        return Verification(subject)
    with ctx.reporter.phase(f"verifying {app_name} in {ctx.name} ({len(plan.names)} check(s))"):
        return run(plan, subject, cluster, revision, say=lambda line: ctx.reporter.progress(f"  {line}"))


def recorded(verification: Verification) -> dict[str, Any]:
    """What the ledger entry of the rollout (or of ``deployctl verify``) records of ``verification``."""
    return {"verified": verification.outcome, "checks": verification.record()}


def verify_rollout(
    ctx: EnvContext,
    cluster: ClusterClient,
    plan: RolloutPlan,
    revision: Release,
    complete: Callable[..., None],
    proof: str,
) -> Verification:
    """After a healthy rollout, the lock still held: run the app's checks and complete the rollout's intent with
    the outcome. Passed (or none configured): ``succeeded``, the checks recorded. A failed check: ``failed``
    (never healthy), exit 1 naming the check and what it saw. A check that could not run (exit 2 or 1): ``unknown``,
    never passed (``deployctl verify ENV`` runs them again once fixed). Killed halfway: the intent stays open and
    the next run settles it ``unknown``; stopped by a signal: ``unknown`` now."""
    try:
        verification = run_checks(ctx, cluster, plan.verification or Plan(), plan.app, revision, plan.image.digest)
    except KeyboardInterrupt:
        complete(outcome="unknown", verdict="healthy", verified="unknown",
                 message=f"healthy: {proof}; interrupted while verifying: not verified")  # fmt: skip
        raise
    if verification.passed:
        shown = "" if not verification.checks else f"; verified: {verification.summary()}"
        complete(outcome="succeeded", verdict="healthy", message=f"healthy: {proof}{shown}", **recorded(verification))
        return verification
    judged = verification.outcome == FAILED
    complete(
        outcome="failed" if judged else "unknown",
        verdict="failed" if judged else "healthy",
        message=f"verification {verification.summary()} (the pods were healthy: {proof})",
        **recorded(verification),
    )
    error = verification.error()
    if error is not None:  # always: a verification that did not pass has its culprit
        raise error
    return verification


def recorded_run(
    ctx: EnvContext, cluster: ClusterClient, plan: Plan, base: Entry, revision: Release, proof: str
) -> tuple[Verification, Entry]:
    """The checks of ``base.app`` run again on what runs, recorded as ``deployctl verify`` records them: an intent
    written ahead (killed halfway, the next run settles it ``unknown``), then an entry of action ``verify`` (passed:
    proof of the digest; failed: a failure of it; a check that could not run: ``unknown``)."""
    intent = base.written_now(outcome="started", message=f"verification of {base.release} ({base.digest})")
    ctx.record(intent)
    try:
        result = run_checks(ctx, cluster, plan, base.app, revision, base.digest)
    except KeyboardInterrupt:
        ctx.record(base.written_now(outcome="unknown", intent=intent.id, verified="unknown", message="interrupted"))
        raise
    judged = result.outcome in ("passed", "skipped", "failed")
    entry = base.written_now(
        outcome=("succeeded" if result.passed else "failed") if judged else "unknown",
        verdict="healthy" if result.outcome != FAILED else "failed",
        intent=intent.id,
        message=f"healthy: {proof}; verification {result.summary()}",
        **recorded(result),
    )
    ctx.record(entry)
    return result, entry


def after_unchanged(ctx: EnvContext, cluster: ClusterClient, plan: RolloutPlan, result: DeployResult) -> DeployResult:
    """A rollout that changed nothing (``redeploy``: no helm revision, judged healthy as it is) runs the app's checks
    too, recorded as ``deployctl verify``: a retried deploy of a build whose checks fail never succeeds."""
    if plan.verification is None or not plan.verification.configured:
        return result
    revision = cluster.helm.status(plan.release, cluster.namespace)  # with the chart's test hooks
    base = Entry(ctx.name, plan.app, "verify", "started", digest=plan.image.digest, cluster=result.cluster,
                 release=f"{plan.release}@{revision.revision}")  # fmt: skip
    checked, _ = recorded_run(ctx, cluster, plan.verification, base, revision, result.message)
    error = checked.error()
    if error is not None:
        raise error
    return replace(result, verification=checked, message=f"{result.message}; verified: {checked.summary()}")
