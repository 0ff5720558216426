"""``deployctl diff ENV``: what a deploy would change, against the LIVE objects in the cluster (see ``drift``)."""

from __future__ import annotations

from dataclasses import replace

from deployctl.app.context import EnvContext
from deployctl.app.steps.drift import environment_drift
from deployctl.app.steps.freeze import freeze_state
from deployctl.release.drift import DiffResult


def diff(ctx: EnvContext, app: str | None = None, *, digest: str | None = None) -> DiffResult:
    """Render each app's chart and compare it with the live objects (``deployctl plan`` includes this), with the
    environment's change windows now (a deploy would be refused during a freeze)."""
    ctx.require_deployable()
    return replace(environment_drift(ctx, app, digest=digest), freeze=freeze_state(ctx))
