"""``deployctl lock status|break ENV``: the environment lock, and terraform's state lock (``--state``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from deployctl.app.context import EnvContext
from deployctl.core.errors import UsageError
from deployctl.ledger.lock import LockInfo, Observed
from deployctl.terraform import adapter as terraform
from deployctl.terraform import workspace as infra


@dataclass(frozen=True)
class LockResult:
    env: str
    observed: Observed | None
    command: str = "lock status"

    @property
    def lock(self) -> LockInfo | None:
        return self.observed.info if self.observed else None

    def data(self) -> Mapping[str, Any]:
        seen = self.observed
        if seen is None:
            return {"env": self.env, "locked": False, "lock": None}
        info: dict[str, Any] = {
            **asdict(seen.info),
            "renewed": seen.renewed.isoformat(),  # S3's clock (the lock object's LastModified)
            "expires": seen.expires.isoformat(),
            "s3_now": seen.now.isoformat() if seen.now else None,
            "expired": seen.expired,
        }
        return {"env": self.env, "locked": True, "lock": info}

    def text(self) -> Sequence[str]:
        seen = self.observed
        if seen is None:
            return [f"{self.env}: not locked"]
        stale = " (expired)" if seen.expired else ""
        ttl = seen.info.ttl.total_seconds()
        renewed, expires = (t.isoformat(timespec="seconds") for t in (seen.renewed, seen.expires))
        return [
            f"{self.env}: locked{stale} by {seen.info.describe()}",
            f"  id {seen.info.id}, fence {seen.info.fence}",
            f"  renewed {renewed}, expires {expires} unless renewed (S3's clock; time to live {ttl:.0f}s)",
        ]


@dataclass(frozen=True)
class LockBreakResult:
    env: str
    kind: str  # "environment" | "state"
    removed: Mapping[str, Any] | None
    lock_id: str | None
    command: str = "lock break"

    def data(self) -> Mapping[str, Any]:
        return {"env": self.env, "kind": self.kind, "lock_id": self.lock_id, "removed": self.removed}

    def text(self) -> Sequence[str]:
        if self.kind == "state":
            return [f"{self.env}: terraform state lock {self.lock_id} removed"]
        if self.removed is None:
            return [f"{self.env}: not locked"]
        return [f"{self.env}: environment lock {self.removed.get('id')} removed (held by {self.removed.get('owner')})"]


def lock_status(ctx: EnvContext) -> LockResult:
    return LockResult(ctx.name, ctx.lock.observe())


def break_lock(ctx: EnvContext, *, state: bool = False, lock_id: str | None = None) -> LockBreakResult:
    """Remove the environment lock (default), or terraform's state lock ``lock_id`` with ``state``."""
    if not state:
        removed = ctx.lock.break_lock(lock_id)
        return LockBreakResult(ctx.name, "environment", asdict(removed) if removed else None, lock_id)
    if not lock_id:
        raise UsageError(
            "--state needs --id: the id of terraform's state lock",
            'the id is in the error that reported the lock ("lock id ...")',
        )
    prepared = ctx.terraform()
    ctx.reporter.warn(
        f"{ctx.name}: force-unlocking terraform state lock {lock_id}: if its holder is still running, "
        "two runs may now write the state at once"
    )
    infra.ensure_init(prepared)
    terraform.force_unlock(prepared.workspace, lock_id)
    return LockBreakResult(ctx.name, "state", None, lock_id)
