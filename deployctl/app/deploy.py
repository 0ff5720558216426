"""``deployctl deploy ENV``: every app (or ``--app``), by digest, onto one environment, each watched until it serves.

Validate everything first (each app's image in the registry, its chart renders with its values), take
the environment lock once, then roll the apps out in ``needs`` levels, the apps of a level together
(``levels``; each ``base.roll_out``: settle what an interrupted run left, ``helm upgrade --install`` without
``--wait``, watch the rollout failing within seconds, verify the release is healthy, record the verdict),
stopping after the first level with a failure. Refused during a change window (``base.require_window``);
a failure is announced (``deploy-failed``). Never rolls back: a broken rollout leaves the old pods serving,
and the fix is rolled forward.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from deployctl.app.context import EnvContext
from deployctl.app.steps.cluster_waves import roll_out_waves
from deployctl.app.steps.deploy_images import (
    PROMOTED,
    ImageChoice,
    built_images,
    check_input,
    promoted_images,
    require_unchanged,
)
from deployctl.app.steps.freeze import require_window
from deployctl.app.steps.rollout import plan_rollout, roll_out
from deployctl.config import deploy_order
from deployctl.core.errors import DeployctlError, PolicyError
from deployctl.core.refs import ImageRef
from deployctl.ledger import labels
from deployctl.ledger.entry import Entry, Override
from deployctl.notify import events
from deployctl.rollout import levels
from deployctl.rollout.results import DeployResult, RolloutPlan
from deployctl.rollout.waves import Target

ALLOW_UNPROMOTED = "--allow-unpromoted"
DEFAULT_ROLLOUT_TIMEOUT = 600.0


@dataclass(frozen=True)
class DeployReport:
    """What ``deployctl deploy`` did: each app's (and cluster's) rollout, and the apps skipped."""

    env: str
    apps: tuple[DeployResult, ...]
    skipped: tuple[str, ...] = ()  # optional apps with no image for this commit: they keep what they run
    command: str = "deploy"

    def data(self) -> Mapping[str, Any]:
        return {"env": self.env, "apps": [a.data() for a in self.apps], "skipped": list(self.skipped)}

    def text(self) -> Sequence[str]:
        lines = [line for result in self.apps for line in result.text()]
        return lines + [f"skipped {item}" for item in self.skipped]


def deploy(
    ctx: EnvContext,
    *,
    app: str | None = None,
    image_tag: str | None = None,
    digest: str | None = None,
    lock_timeout: float | None = None,
    rollout_timeout: float = DEFAULT_ROLLOUT_TIMEOUT,
    allow_unpromoted: str | None = None,
    override_freeze: str | None = None,
) -> DeployReport:
    """Resolve every app's image, validate everything, take the lock, then roll the apps out in order.

    An environment that takes images only by promotion deploys only digests its ledger shows promoted
    (checked again under the lock); ``allow_unpromoted`` (the reason) overrides that and is recorded.
    Refused inside a change window of the environment unless ``override_freeze`` (the reason) is given."""
    ctx.require_deployable()
    env = ctx.env
    names = [ctx.app(app)[0]] if app is not None else deploy_order(ctx.config.settings.apps)
    if env.promote_from is not None and (image_tag is not None or digest is not None):
        raise PolicyError(
            f"{ctx.name} takes images only by promotion from {env.promote_from}",
            f"run `deployctl promote <release tag>`; `deployctl deploy {ctx.name}` alone re-deploys "
            "the promoted digests from the values file",
        )
    check_input(ctx, names, image_tag, digest)
    if env.promote_from is not None:
        choices, skipped = promoted_images(ctx, names, values_only=allow_unpromoted is not None)
    else:
        choices, skipped = built_images(ctx, names, image_tag, digest)
    overrides: tuple[Override, ...] = (Override(ALLOW_UNPROMOTED, allow_unpromoted),) if allow_unpromoted else ()
    # the images exist: a refusal comes before any chart is rendered, an override before the lock
    freeze = require_window(ctx, "deploy", override_freeze)
    overrides += (freeze,) if freeze is not None else ()
    needs = {c.app: ctx.config.settings.apps[c.app].needs for c in choices}
    targets = ctx.targets()
    with ctx.clusters() as clusters, tempfile.TemporaryDirectory(prefix="deployctl-values-") as workdir:
        plans = {
            t.name: [
                plan_rollout(ctx, clusters[t.name], c.app, _in(ctx, c, t), c.git_sha, _dir(Path(workdir), t))
                for c in choices
            ]
            for t in targets
        }
        first = plans[targets[0].name]
        with ctx.locked(f"deploy {ctx.name} " + " ".join(f"--app {p.app}" for p in first), lock_timeout):
            # judged again now that nobody else can change the environment: a window may have begun, and a promotion
            # may have moved it on while this run waited (its choice would roll that back)
            if freeze is None:
                freeze = require_window(ctx, "deploy", override_freeze)
                overrides += (freeze,) if freeze is not None else ()
            if env.promote_from is not None:
                require_unchanged(ctx, names, choices, values_only=allow_unpromoted is not None)
            if env.promote_from is not None and not allow_unpromoted:
                _require_promoted(ctx, first)

            def roll(target: Target, done: list[DeployResult]) -> None:
                planned = {p.app: p for p in plans[target.name]}

                def one(app: str) -> DeployResult:
                    plan = planned[app]
                    entry = Entry(
                        env=ctx.name,
                        app=plan.app,
                        action="deploy",
                        outcome="started",  # a template: each write says its outcome
                        digest=plan.image.digest,
                        tag=plan.image.tag,
                        commit=plan.git_sha,
                        overrides=overrides,
                        cluster=target.name,
                    )
                    return roll_out(ctx, clusters[target.name], plan, entry, timeout=rollout_timeout, wave=target.wave)

                ran = levels.run(list(planned), needs, one, say=ctx.reporter.progress)
                done.extend(result for _, result in ran.done)
                if not ran.ok:  # several clusters: the error says what each cluster runs
                    raise ran.error(_runs, listing=not ctx.several, later="not started (keeps what it ran)")

            try:
                done = roll_out_waves(ctx, clusters, plans, roll, action="deploy", settle_timeout=rollout_timeout)
            except DeployctlError as exc:
                apps = tuple((p.app, p.image.digest) for p in first)
                ctx.announce(events.deploy_failed(ctx.name, apps, exc, freeze.reason if freeze else None))
                raise
    return DeployReport(ctx.name, tuple(done), tuple(skipped))


def _in(ctx: EnvContext, choice: ImageChoice, target: Target) -> ImageRef:
    """``choice``'s image where ``target`` pulls it (its own registry: the digest must be there)."""
    image = ctx.image(ctx.config.settings.apps[choice.app], tag=choice.image.tag, target=target)
    image = replace(image, digest=choice.image.digest)
    if image.registry != choice.image.registry:
        with ctx.reporter.phase(f"checking {image.pinned} for cluster {target.name}"):
            ctx.resolve_image(replace(image, tag=None))
    return image


def _dir(workdir: Path, target: Target) -> Path:
    """Where ``target``'s values files go (each cluster pins the image in its own registry)."""
    if target.name is None:
        return workdir
    (workdir / target.name).mkdir(exist_ok=True)
    return workdir / target.name


def _require_promoted(ctx: EnvContext, plans: list[RolloutPlan]) -> None:
    """Refuse a digest no promotion brought here (the values file is a file anyone can edit), or whose promotion
    failed or never deployed it because another app failed: promoting that release again re-judges its gate."""
    asked = [labels.of_apps([p.app], actions=["promote"], digest=p.image.digest) for p in plans]
    entries = ctx.read_ledger(question=labels.either(*asked)).entries
    for plan in plans:
        digest = plan.image.digest
        mine = [e for e in entries if e.app == plan.app and e.action == "promote" and e.digest == digest]
        if not any(e.outcome in PROMOTED for e in mine):
            why = "its promotion failed there" if mine else "its ledger has no promotion of it"
            raise PolicyError(
                f"{plan.app}: {digest} (from {ctx.values.path.name}) was never promoted to {ctx.name}: {why}",
                f"promote a release (`deployctl promote release-X.Y.Z`), or pass {ALLOW_UNPROMOTED} --reason TEXT "
                "(recorded in the history)",
            )


def _runs(result: DeployResult) -> str:
    return f"runs {result.image.digest} (rolled out)"
