"""``deployctl diff ENV``: what a deploy would change, against the LIVE objects in the cluster (see ``drift``)."""

from __future__ import annotations

from deployctl.app.base import environment_drift
from deployctl.app.context import EnvContext
from deployctl.drift import DiffResult


def diff(ctx: EnvContext, app: str | None = None, *, digest: str | None = None) -> DiffResult:
    """Render each app's chart and compare it with the live objects (``deployctl plan`` includes this)."""
    ctx.require_deployable()
    return environment_drift(ctx, app, digest=digest)
