"""What is asked of a promotion: the release, the apps, the flags that override a gate."""

from __future__ import annotations

from dataclasses import dataclass

from deployctl.config import Environment
from deployctl.ledger.entry import Override

SKIP_DEV_CHECK = "--skip-dev-check"


ALLOW_DOWNGRADE = "--allow-downgrade"


ALLOW_LOCAL_TAG = "--allow-local-tag"


@dataclass(frozen=True)
class PromoteRequest:
    tag: str
    to_env: str | None = None
    app: str | None = None
    dry_run: bool = False
    skip_dev_check: bool = False
    allow_downgrade: bool = False
    allow_local_tag: bool = False  # promote a tag the remote does not have (recorded)
    reason: str | None = None
    commit: bool = False
    push: bool = False  # push the values commit to the main branch (implies commit)
    deploy: bool = True
    lock_timeout: float | None = None
    rollout_timeout: float | None = None  # None: the target's rollout_timeout_seconds

    def overrides(self) -> tuple[Override, ...]:
        found = []
        if self.skip_dev_check:
            found.append(Override(SKIP_DEV_CHECK, self.reason or ""))
        if self.allow_downgrade:
            found.append(Override(ALLOW_DOWNGRADE, self.reason or ""))
        if self.allow_local_tag:
            found.append(Override(ALLOW_LOCAL_TAG, self.reason or ""))
        return tuple(found)

    def gate_overrides(self) -> dict[str, bool]:
        """``judge``'s keyword arguments: the overrides asked for."""
        return {
            "skip_dev_check": self.skip_dev_check,
            "allow_downgrade": self.allow_downgrade,
            "allow_local_tag": self.allow_local_tag,
        }

    def rollout_seconds(self, target: Environment) -> float:
        return float(self.rollout_timeout if self.rollout_timeout is not None else target.rollout_timeout_seconds)
