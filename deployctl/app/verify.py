"""``deployctl verify ENV [--app A]``: run each app's checks again against what runs now, and record the result (an
entry of action ``verify``, which the promotion gate counts). See ``app.steps.reverify``."""

from __future__ import annotations

from deployctl.app.context import EnvContext
from deployctl.app.steps.reverify import VerifyReport, verify_now


def verify(ctx: EnvContext, *, app: str | None = None, lock_timeout: float | None = None) -> VerifyReport:
    """Every app (or ``app``) of ``ctx``'s environment, verified now under its lock and recorded."""
    return verify_now(ctx, app=app, lock_timeout=lock_timeout)
