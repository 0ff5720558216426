"""``deployctl bootstrap ENV``: create the environment's terraform state bucket before its first ``plan``
(versioned, encrypted, private, Object Lock for its ledger; locking by the backend's lock file), idempotently,
with the environment's one AWS session (its role assumed once)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deployctl.app.context import EnvContext
from deployctl.core.errors import UsageError
from deployctl.terraform import state_bucket
from deployctl.terraform.state_bucket import BucketReport


@dataclass(frozen=True)
class BootstrapResult:
    env: str
    report: BucketReport
    key: str
    use_lockfile: bool
    command: str = "bootstrap"
    retention_days: int = 0  # the Object Lock default retention asked for (0: none)

    def data(self) -> Mapping[str, Any]:
        r = self.report
        return {
            "env": self.env,
            "bucket": r.bucket,
            "region": r.region,
            "key": self.key,
            "changed": list(r.changed),
            "kept": list(r.kept),
            "locking": "lockfile" if self.use_lockfile else None,
            "retention_days": self.retention_days,
        }

    def text(self) -> Sequence[str]:
        r = self.report
        done = ", ".join(r.changed) if r.changed else "nothing to do"
        lines = [f"{self.env}: state bucket s3://{r.bucket} ({r.region}): {done}"]
        if r.kept:
            lines.append(f"  already so: {', '.join(r.kept)}")
        if self.use_lockfile:
            lines.append(f"  locking: terraform's lock file beside s3://{r.bucket}/{self.key} (use_lockfile = true)")
        else:
            lines.append("  locking: OFF (backend.use_lockfile = false): two applies may overlap; set it to true")
        if not self.retention_days:
            lines.append(
                "  ledger: NOT protected (backend.retention_days = 0): an identity allowed to delete in the bucket "
                "can erase its history"
            )
        lines.append(f"next: deployctl plan {self.env}")
        return lines


def bootstrap(ctx: EnvContext) -> BootstrapResult:
    """Create (or check) the state bucket ``ctx``'s terraform backend names, in its region."""
    terraform = ctx.env.terraform
    if terraform is None:
        with_tf = [n for n, e in ctx.config.settings.environments.items() if e.terraform is not None]
        raise UsageError(
            f"environment {ctx.name!r} has no terraform backend to bootstrap",
            f"environments with terraform: {', '.join(with_tf) or '(none)'}",
        )
    backend = terraform.backend
    with ctx.reporter.phase(f"{ctx.name}: state bucket s3://{backend.bucket}"):
        report = state_bucket.ensure(ctx.aws.client("s3"), backend.bucket, backend.region, backend.retention_days)
    return BootstrapResult(ctx.name, report, backend.key, backend.use_lockfile, retention_days=backend.retention_days)
