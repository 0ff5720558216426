"""Verify again what runs (``deployctl verify ENV [--app A]``, and ``promote`` with ``verify_before_promote``): each
app's checks against its release as it runs now, recorded.

Under the environment's lock (no rollout changes the release while it is checked): settle what an interrupted run
left, judge each app's release now (the one definition of healthy: an app that is not healthy fails without its
checks), record a ``started`` intent, run the checks (``app.steps.verification``), and complete the intent with
an entry of action ``verify``: its digest, ``verified`` and each check's outcome. The promotion gate counts a
passed verification of a digest as proof that it works there, and a failed one as a failure of it (``evidence``).
A verification killed halfway leaves its intent open: the next run settles it ``unknown``, never passed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deployctl.app.context import Contexts, EnvContext
from deployctl.app.steps import verification
from deployctl.app.steps.recovery import reconcile
from deployctl.config import deploy_order
from deployctl.core.errors import DeployctlError, OperationError
from deployctl.ledger.entry import Entry
from deployctl.promotion.entries import target_env_name
from deployctl.rollout.cluster import ClusterClient
from deployctl.verification.model import Verification
from deployctl.verification.plan import Plan


@dataclass(frozen=True)
class AppVerification:
    app: str
    release: str
    digest: str | None
    healthy: bool
    health: str  # the health verdict's proof, or why it is not healthy
    verification: Verification | None  # None: not run (the release is not installed or not healthy)
    entry: str = ""  # the ledger entry's id

    @property
    def outcome(self) -> str:
        if not self.healthy or self.verification is None:
            return "failed"
        return self.verification.outcome

    def data(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "release": self.release,
            "digest": self.digest,
            "healthy": self.healthy,
            "health": self.health,
            "outcome": self.outcome,
            "verification": self.verification.data() if self.verification is not None else None,
            "entry": self.entry,
        }

    def text(self) -> list[str]:
        lines = [f"{self.app}: {self.outcome} ({self.digest or 'no digest'})", f"  health  {self.health}"]
        return lines + (self.verification.text() if self.verification is not None else [])


@dataclass(frozen=True)
class VerifyReport:
    env: str
    apps: tuple[AppVerification, ...]
    command: str = "verify"

    @property
    def ok(self) -> bool:
        return all(a.outcome in ("passed", "skipped") for a in self.apps)

    def data(self) -> Mapping[str, Any]:
        return {"env": self.env, "ok": self.ok, "apps": [a.data() for a in self.apps]}

    def text(self) -> Sequence[str]:
        return [line for app in self.apps for line in app.text()]


def verify_now(ctx: EnvContext, *, app: str | None = None, lock_timeout: float | None = None) -> VerifyReport:
    """Every app (or ``app``), in ``needs`` order; each recorded. Exit 1 (OperationError) when one failed, 2 when a
    check could not run for the configuration's reason: the report of every app is in the error's details."""
    ctx.require_deployable()
    names = [ctx.app(app)[0]] if app is not None else deploy_order(ctx.config.settings.apps)
    if ctx.several:
        raise OperationError(
            f"{ctx.name} has several clusters: `deployctl verify` runs against one cluster only for now",
            "its rollouts are verified cluster by cluster as they roll out",
        )
    plans = {name: verification.plan_for(ctx, name) for name in names}  # a missing token refuses before the lock
    done: list[AppVerification] = []
    with ctx.cluster() as cluster, ctx.locked(f"verify {ctx.name}", lock_timeout):
        for name in names:
            _, config = ctx.app(name)
            reconcile(ctx, cluster, name, config.release)
            try:
                done.append(_one(ctx, cluster, name, config.release, plans[name]))
            except _Stopped as stopped:
                done.append(stopped.result)
                raise _error(ctx.name, done, stopped.error) from None
    report = VerifyReport(ctx.name, tuple(done))
    if not report.ok:
        failed = next(a for a in report.apps if a.outcome not in ("passed", "skipped"))
        raise VerificationFailedError(
            f"verification of {failed.app} in {ctx.name} failed: {failed.health}",
            f"see `deployctl status {ctx.name}`; roll forward: fix it and deploy again",
            details={"report": report.data()},
        )
    return report


class VerificationFailedError(OperationError):
    """A verification that ran and failed (a check failed, or the release is not healthy now): exit 1, recorded."""


class _Stopped(Exception):  # noqa: N818 - internal: one app's verification ended with an error to raise
    def __init__(self, result: AppVerification, error: DeployctlError) -> None:
        super().__init__(error.message)
        self.result = result
        self.error = error


def _one(ctx: EnvContext, cluster: ClusterClient, name: str, release_name: str, plan: Plan) -> AppVerification:
    live = cluster.live(release_name)
    if live is None:
        entry = Entry(ctx.name, name, "verify", "failed", message=f"release {release_name} is not installed")
        ctx.record(entry)
        return AppVerification(name, release_name, None, False, entry.message, None, entry.id)
    revision = live.release
    digest = live.workloads[0].health.desired_digest if live.workloads else None
    health = live.health(digest)
    base = Entry(ctx.name, name, "verify", "started", digest=digest, release=f"{release_name}@{revision.revision}")
    if not health.healthy:
        entry = base.written_now(outcome="failed", verdict="failed", message=f"not healthy now: {health.summary}")
        ctx.record(entry)
        return AppVerification(name, release_name, digest, False, health.summary, None, entry.id)
    result, entry = verification.recorded_run(ctx, cluster, plan, base, revision, health.proof)
    found = AppVerification(name, release_name, digest, True, health.proof, result, entry.id)
    error = result.error()
    if error is not None and result.outcome == "failed":
        error = VerificationFailedError(error.message, error.hint, details=error.details)
    if error is not None:
        raise _Stopped(found, error)
    return found


def _error(env: str, done: list[AppVerification], error: DeployctlError) -> DeployctlError:
    error.details = {**error.details, "report": VerifyReport(env, tuple(done)).data()}
    return error


def before_promotion(contexts: Contexts, to_env: str | None, app: str | None, *, dry_run: bool) -> None:
    """``environments.TARGET.verify_before_promote``: the source's checks run again (under the source's lock, each
    recorded in its ledger) before the gate is judged, so the gate counts a fresh verification. A check that fails
    is left to the gate (it refuses, exit 4, naming the check); a check that cannot run stops the promotion (exit 2
    or 1): an older pass must not stand in for it. A dry run changes nothing, so it only says it would verify."""
    target = contexts[target_env_name(contexts.config, to_env)]
    source = contexts[str(target.env.promote_from)]
    if not target.env.verify_before_promote or not source.env.deployable:
        return
    if dry_run:
        source.reporter.progress(f"a promotion runs the checks of {source.name} again first (verify_before_promote)")
        return
    source.reporter.progress(f"verifying {source.name} again before the gate (verify_before_promote)")
    try:
        verify_now(source, app=app)
    except VerificationFailedError as exc:  # recorded: the gate refuses the digest, naming the check
        source.reporter.warn(f"{exc.message.splitlines()[0]}: the gate judges it")
